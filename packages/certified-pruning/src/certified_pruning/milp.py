"""Exact reasoning with scipy's HiGHS: the big-M MILP of a ReLU network (Tjeng et al. 2019), and the LP of a
fully split branch-and-bound leaf (the network is affine on a leaf, so one LP decides it exactly).

The MILP uses its own interval bounds for big-M constants, independent of the verifier's CROWN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import lil_matrix

from certified_pruning.affine_net import AffineReluNetwork


@dataclass(frozen=True)
class ExactResult:
    """Exact minimum of a scalar network output over a box (None: not decided within the time limit)."""

    minimum: float | None
    minimiser: np.ndarray | None
    seconds: float
    status: str  # "optimal", "infeasible", "time_limit" or a solver message
    incumbent: float | None = None  # best feasible objective found before a time limit (an upper bound on the min)


def _interval_pre_activations(network: AffineReluNetwork, x_lower: np.ndarray, x_upper: np.ndarray):
    """Interval bounds of every ReLU layer's pre-activation (numpy, for big-M constants): `interval_bounds`, the
    verifier's IBP (not its CROWN)."""
    from certified_pruning.relaxation import interval_bounds

    bounds = interval_bounds(network, torch.as_tensor(x_lower, dtype=torch.float64)[None],
                             torch.as_tensor(x_upper, dtype=torch.float64)[None])
    return [(lower[0].numpy(), upper[0].numpy()) for lower, upper in zip(bounds.lowers, bounds.uppers, strict=True)]


def milp_minimum(network: AffineReluNetwork, x_lower: np.ndarray, x_upper: np.ndarray,
                 time_limit: float = 60.0,
                 pre_bounds: list[tuple[np.ndarray, np.ndarray]] | None = None) -> ExactResult:
    """Exact minimum of the (single) output of `network` over the box, by a big-M MILP (one binary per unstable ReLU).

    Variables: x, then per ReLU layer the pre-activations z and activations a; a = relu(z) encoded as
    a ≥ z, a ≥ 0, a ≤ u·δ, a ≤ z − l·(1 − δ) with δ binary for unstable neurons; a = z or a = 0 when stable.
    pre_bounds: sound pre-activation bounds per ReLU layer for the big-M constants (default: interval arithmetic).
    """
    if network.num_outputs != 1:
        raise ValueError("milp_minimum needs a network with one output; use network.with_spec(row)")
    start = time.perf_counter()
    if pre_bounds is None:
        pre_bounds = _interval_pre_activations(network, x_lower, x_upper)
    sizes = network.relu_layer_sizes
    n_inputs = len(x_lower)
    # variable layout: x | (z_k, a_k, d_k) per layer
    offsets, position = [], n_inputs
    for size in sizes:
        offsets.append(position)
        position += 3 * size
    n_vars = position
    lower = np.full(n_vars, -np.inf)
    upper = np.full(n_vars, np.inf)
    integrality = np.zeros(n_vars)
    lower[:n_inputs], upper[:n_inputs] = x_lower, x_upper
    rows: list[tuple[dict[int, float], float, float]] = []
    previous = np.arange(n_inputs)
    for k, size in enumerate(sizes):
        z, a, d = offsets[k], offsets[k] + size, offsets[k] + 2 * size
        weight, bias = network.weights[k].numpy(), network.biases[k].numpy()
        l_k, u_k = pre_bounds[k]
        for i in range(size):
            row = {int(j): float(weight[i, c]) for c, j in enumerate(previous) if weight[i, c] != 0}
            row[z + i] = -1.0
            rows.append((row, -bias[i], -bias[i]))  # W a_prev − z = −b
            lower[z + i], upper[z + i] = l_k[i], u_k[i]
            lower[d + i], upper[d + i] = 0, 1
            if l_k[i] >= 0:  # stable active
                rows.append(({a + i: 1.0, z + i: -1.0}, 0.0, 0.0))
                lower[a + i], upper[a + i] = 0, max(u_k[i], 0)
            elif u_k[i] <= 0:  # stable inactive
                lower[a + i], upper[a + i] = 0, 0
            else:
                integrality[d + i] = 1
                lower[a + i], upper[a + i] = 0, u_k[i]
                rows.append(({a + i: 1.0, z + i: -1.0}, 0.0, np.inf))  # a ≥ z
                rows.append(({a + i: 1.0, d + i: -u_k[i]}, -np.inf, 0.0))  # a ≤ u δ
                rows.append(({a + i: 1.0, z + i: -1.0, d + i: -l_k[i]}, -np.inf, -l_k[i]))  # a ≤ z − l(1−δ)
        previous = np.arange(a, a + size)
    objective = np.zeros(n_vars)
    final_weight, final_bias = network.weights[-1].numpy()[0], float(network.biases[-1].numpy()[0])
    objective[previous] = final_weight
    matrix = lil_matrix((len(rows), n_vars))
    row_lower, row_upper = np.empty(len(rows)), np.empty(len(rows))
    for r, (coefficients, lo, hi) in enumerate(rows):
        for j, value in coefficients.items():
            matrix[r, j] = value
        row_lower[r], row_upper[r] = lo, hi
    result = milp(objective, constraints=LinearConstraint(matrix.tocsr(), row_lower, row_upper),
                  integrality=integrality, bounds=Bounds(lower, upper),
                  options={"time_limit": time_limit, "mip_rel_gap": 1e-9})
    seconds = time.perf_counter() - start
    if result.status == 0:
        return ExactResult(float(result.fun) + final_bias, result.x[:n_inputs].copy(), seconds, "optimal")
    if result.status == 1:
        incumbent = None if result.x is None else float(objective @ result.x) + final_bias
        return ExactResult(None, None, seconds, "time_limit", incumbent)
    return ExactResult(None, None, seconds, str(result.message))


def leaf_lp_minimum(network: AffineReluNetwork, x_lower: np.ndarray, x_upper: np.ndarray,
                    lowers: list[np.ndarray], uppers: list[np.ndarray]) -> ExactResult:
    """Exact minimum of the single output on a leaf where every neuron's sign is fixed (l ≥ 0 or u ≤ 0).

    On such a leaf every pre-activation is an affine function M_k x + c_k of the input; the leaf is the polytope
    {x in box : sign constraints}, so one LP over x alone gives the exact minimum (or proves the leaf empty).
    """
    start = time.perf_counter()
    matrix = np.eye(len(x_lower))
    offset = np.zeros(len(x_lower))
    inequality_rows, inequality_rhs = [], []
    for k in range(len(network.weights) - 1):
        weight, bias = network.weights[k].numpy(), network.biases[k].numpy()
        matrix, offset = weight @ matrix, weight @ offset + bias
        active = lowers[k] >= 0
        inactive = ~active
        if (inactive & (uppers[k] > 0)).any():
            raise ValueError("leaf_lp_minimum called on a domain with an unstable neuron")
        # active: M x + c ≥ 0  <=>  −M x ≤ c ; inactive: M x + c ≤ 0
        inequality_rows += [-matrix[active], matrix[inactive]]
        inequality_rhs += [offset[active], -offset[inactive]]
        matrix = np.where(active[:, None], matrix, 0.0)
        offset = np.where(active, offset, 0.0)
    final_weight, final_bias = network.weights[-1].numpy(), network.biases[-1].numpy()
    objective, constant = (final_weight @ matrix)[0], float((final_weight @ offset + final_bias)[0])
    result = linprog(objective, A_ub=np.vstack(inequality_rows), b_ub=np.concatenate(inequality_rhs),
                     bounds=list(zip(x_lower, x_upper, strict=True)), method="highs")
    seconds = time.perf_counter() - start
    if result.status == 0:
        return ExactResult(float(result.fun) + constant, result.x.copy(), seconds, "optimal")
    if result.status == 2:
        return ExactResult(None, None, seconds, "infeasible")
    return ExactResult(None, None, seconds, str(result.message))


def milp_verify(network: AffineReluNetwork, x_lower: np.ndarray, x_upper: np.ndarray, label: int,
                time_limit: float = 60.0, big_m: str = "interval",
                labels: list[int] | None = None) -> tuple[str, float]:
    """Exact robustness answer by one MILP per other label: 'verified', 'falsified' or 'timeout', and seconds.

    labels: the other labels to check (default: all); e.g. those the verifier's α-CROWN left open.

    big_m: "interval" (IBP constants, independent of the verifier: the test oracle) or "crown" (tighter CROWN
    constants, the stronger baseline the benchmark uses; their computation is included in the time).
    """
    start = time.perf_counter()
    pre_bounds = None
    if big_m == "crown":
        from certified_pruning.relaxation import crown_layer_bounds

        bounds = crown_layer_bounds(network, torch.from_numpy(x_lower)[None], torch.from_numpy(x_upper)[None])
        pre_bounds = [(lo[0].numpy(), up[0].numpy()) for lo, up in zip(bounds.lowers, bounds.uppers, strict=True)]
    eye = torch.eye(network.num_outputs, dtype=torch.float64)
    for other in (range(network.num_outputs) if labels is None else labels):
        if other == label:
            continue
        remaining = time_limit - (time.perf_counter() - start)
        if remaining <= 0:
            return "timeout", time.perf_counter() - start
        result = milp_minimum(network.with_spec((eye[label] - eye[other]).unsqueeze(0)), x_lower, x_upper, remaining,
                              pre_bounds)
        if result.minimum is None:  # a feasible MILP point is an exact network evaluation: ≤ 0 is a real attack
            decided = result.incumbent is not None and result.incumbent <= 0
            return ("falsified" if decided else "timeout"), time.perf_counter() - start
        if result.minimum <= 0:
            return "falsified", time.perf_counter() - start
    return "verified", time.perf_counter() - start

import pytest
import torch
from armin.cells import ArminCell, PaperLSTMCell


def _reference_armin(cell: ArminCell, x, h, r):
    """The ARMIN cell written directly from the full matrices W1 (Eq. 1) and W (Eq. 4) over [x, h, r]."""
    n_in = x.shape[1]
    w_full = cell.input_projection.weight
    b_full = cell.input_projection.bias
    split = cell.hidden + cell.width
    w1 = torch.cat([w_full[:split], cell.integration_gates.weight], dim=1)
    w = torch.cat([w_full[split:], cell.gates.weight], dim=1)
    s = torch.cat([x, h, r], dim=1)
    gates = torch.sigmoid(s @ w1.T + b_full[:split])
    s_gated = torch.cat([x, s[:, n_in:] * gates], dim=1)
    pre = s_gated @ w.T + b_full[split:]
    hid = cell.hidden
    i, j, f, o = pre[:, :4 * hid].split(hid, dim=1)
    o_r = pre[:, 4 * hid:]
    state = h * torch.sigmoid(f + 1) + torch.sigmoid(i) * torch.tanh(j)
    if cell.variant == "code":
        state = torch.tanh(state)
        return state, torch.cat([state * torch.sigmoid(o), r * torch.sigmoid(o_r)], dim=1)
    return state, torch.cat([torch.sigmoid(o) * torch.tanh(state), torch.sigmoid(o_r) * torch.tanh(r)], dim=1)


@pytest.mark.parametrize("variant", ["code", "paper"])
def test_armin_cell_matches_the_equations_written_out(variant):
    torch.manual_seed(0)
    cell = ArminCell(3, 5, 4, variant)
    with torch.no_grad():
        for parameter in cell.parameters():
            parameter.normal_()  # non-zero biases too
    x, h, r = torch.randn(2, 3), torch.randn(2, 5), torch.randn(2, 4)
    state, out = cell(cell.project_input(x), h, r)
    ref_state, ref_out = _reference_armin(cell, x, h, r)
    torch.testing.assert_close(state, ref_state)
    torch.testing.assert_close(out, ref_out)


@pytest.mark.parametrize("variant", ["code", "paper"])
def test_armin_cell_gradcheck_float64(variant):
    torch.manual_seed(0)
    cell = ArminCell(2, 3, 2, variant).double()
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    r = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h, r: cell(cell.project_input(x), h, r), (x, h, r))


def test_paper_lstm_cell_is_the_standard_lstm_with_forget_bias_one():
    torch.manual_seed(0)
    cell = PaperLSTMCell(3, 4)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    new_h, new_c = cell(cell.project_input(x), h, c)
    torch_cell = torch.nn.LSTMCell(3, 4)  # gate order i, f, g, o; ours is i, j(=g), f, o
    w_ih, w_hh = cell.input_gates.weight.chunk(4), cell.recurrent_gates.weight.chunk(4)
    with torch.no_grad():
        torch_cell.weight_ih.copy_(torch.cat([w_ih[0], w_ih[2], w_ih[1], w_ih[3]]))
        torch_cell.weight_hh.copy_(torch.cat([w_hh[0], w_hh[2], w_hh[1], w_hh[3]]))
        torch_cell.bias_ih.zero_()
        torch_cell.bias_hh.copy_(torch.cat([torch.zeros(4), torch.ones(4), torch.zeros(8)]))
    ref_h, ref_c = torch_cell(x, (h, c))
    torch.testing.assert_close(new_h, ref_h)
    torch.testing.assert_close(new_c, ref_c)


def test_weights_start_orthogonal():
    cell = PaperLSTMCell(3, 4)
    full = torch.cat([cell.input_gates.weight, cell.recurrent_gates.weight], dim=1)  # 16 × 7: orthonormal columns
    torch.testing.assert_close(full.T @ full, torch.eye(7), atol=1e-5, rtol=0)

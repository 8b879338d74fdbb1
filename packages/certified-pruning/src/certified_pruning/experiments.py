"""Experiments of `certified-pruning`, registered with `repro` through the `repro.experiments` entry point.

`pruning` — the paper's grid: every pruning method × training mode (FGSM+GradAlign, CROWN-IBP) × sparsity level
(lottery rounds), each pruned model verified completely (`pruning_experiment`, tables/figures/claims in
`pruning_report`). `verify-dense` — train the (scaled-down) `cifar_model_deep` and verify it completely with the
paper's protocol (round 0 of the lottery-ticket loop, before any pruning).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from repro_shared.errors import ConfigError
from repro_shared.experiments import Experiment


@dataclass(frozen=True)
class VerifyDenseConfig:
    """Train one dense network and verify the first `images` test images."""

    dataset: str = "digits"
    train_mode: str = "fgsm"  # natural | fgsm | crown-ibp
    train_eps: float = 0.05
    epochs: int = 20
    learning_rate: float = 0.05
    channels: tuple[int, ...] = (8, 16, 16, 32, 32)  # 1,216 ReLUs on 8×8 digits
    fc_width: int = 32
    verify_eps: float = 0.05
    images: int = 100
    bab_domains: int = 1000  # BaB domains per image: the deterministic budget (paper: 300 s per image)
    timeout: float = 300.0  # wall-clock safety net per image, seconds; its stops are counted (clock_stops)
    pgd_steps: int = 100
    pgd_restarts: int = 20
    alpha_iterations: int = 20
    verifier_memory_gib: float = 8.0  # preflight: refuse a network whose dense verification would need more

    def __post_init__(self) -> None:
        from certified_pruning.checks import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, check_choice, check_fields

        check_choice("train_mode", self.train_mode, ("natural", "fgsm", "crown-ibp"))
        if not self.verify_eps > 0:
            raise ConfigError(f"verify_eps={self.verify_eps}: the perturbation radius must be positive")
        if self.train_mode != "natural" and not self.train_eps > 0:
            raise ConfigError(f"train_eps={self.train_eps}: the training radius must be positive for "
                              f"train_mode={self.train_mode!r}")
        check_fields(self, {"epochs": AT_LEAST_ONE, "learning_rate": POSITIVE, "fc_width": AT_LEAST_ONE,
                            "images": AT_LEAST_ONE, "bab_domains": AT_LEAST_ONE, "timeout": POSITIVE,
                            "pgd_steps": NON_NEGATIVE, "pgd_restarts": AT_LEAST_ONE,
                            "alpha_iterations": NON_NEGATIVE})


def check_verify_dense(config: VerifyDenseConfig, ctx) -> None:
    """Fail at once for a dataset that cannot be loaded (offline: the paper's Hub datasets not in the HF cache)."""
    from certified_pruning.data import check_dataset
    from certified_pruning.pruning_experiment import check_scale
    from certified_pruning.verify import VerifierConfig

    check_dataset(config.dataset)
    check_scale(config.dataset, config.channels, config.fc_width, VerifierConfig(eps=1.0).batch_domains,
                config.verifier_memory_gib, ctx)


def run_verify_dense(config: VerifyDenseConfig, ctx) -> dict:

    from certified_pruning.data import load_split
    from certified_pruning.models import cifar_model_deep, count_relus, model_config_for
    from certified_pruning.train import TrainConfig, accuracy, train_model
    from certified_pruning.verify import VerifierConfig, summarise, verify_dataset

    check_verify_dense(config, ctx)
    split = load_split(config.dataset, seed=ctx.seed)
    model = cifar_model_deep(model_config_for(split.input_shape, split.num_classes, config.channels,
                                              config.fc_width))
    state = ctx.load_checkpoint()
    if state is None:  # training is one step; verification resumes image by image from its own results file
        train = TrainConfig(mode=config.train_mode, eps=config.train_eps, epochs=config.epochs,
                            learning_rate=config.learning_rate, weight_decay=0.0 if config.train_mode != "fgsm"
                            else 5e-4, schedule_start=1, schedule_length=max(1, config.epochs // 2), seed=ctx.seed)
        train_model(model, split.train_images, split.train_labels, train, split.num_classes,
                    on_epoch=lambda epoch, loss: ctx.log_metrics(step=epoch + 1, train_loss=loss))
        ctx.save_checkpoint({"model": model.state_dict()})
    else:
        model.load_state_dict(state["model"])
    model.eval()
    verifier = VerifierConfig(eps=config.verify_eps, timeout=config.timeout, pgd_steps=config.pgd_steps,
                              pgd_restarts=config.pgd_restarts, alpha_iterations=config.alpha_iterations,
                              max_domains=config.bab_domains, seed=ctx.seed)
    count = min(config.images, len(split.test_labels))
    results = verify_dataset(model, split.test_images[:count], split.test_labels[:count], verifier,
                             ctx.artifact("verification.jsonl"), resume=state is not None,
                             on_result=lambda r: ctx.log_metrics(image=r.index, status=r.status, seconds=r.seconds,
                                                                 domains=r.domains))
    summary = summarise(results)
    summary.update(test_accuracy=accuracy(model, split.test_images, split.test_labels),
                   relus=count_relus(model, split.input_shape), images=count)
    return {"metrics": summary,
            "tables": {"per_image": [{k: v for k, v in asdict(r).items() if k != "counterexample"}
                                     for r in results]}}


def tour_config():
    """`pruning` at tour scale: the paper's headline claim on one pre-registered method, for `repro reproduce`.

    Per seed (train/test split, θ₀ and training noise): FGSM+GradAlign training of quick's 1,216-ReLU
    `cifar_model_deep` on the bundled digits, dense, then one lottery round of random pruning to 75 % of the conv
    weights (rewind to θ₀, retrain; random masks of one 75 % step have the distribution of quick's two 50 % steps),
    each model verified completely on the first 100 test images with a deterministic budget of 30 BaB domains per
    image. Claims: random pruning raises certified accuracy over dense, lowers the unstable ReLUs, and keeps test
    accuracy within a point. Sized to ~1.5 CPU-minutes per seed: 6 training epochs per round (quick: 10). Left to
    `quick`: the other nine methods, CROWN-IBP training, the sparsity curve (∩ shape), NRS against the baselines,
    and the figures.
    """
    from certified_pruning.pruning_experiment import PruningConfig

    return PruningConfig(methods=("random",), modes=("fgsm",), rounds=2, rate=0.75, fgsm_epochs=6, images=100,
                         bab_domains=30, make_figures=False, headline_method="random")


def pruning_experiment() -> Experiment:
    """`pruning`: every pruning method × {FGSM, CROWN-IBP} × sparsity level (lottery rounds), verified completely."""
    from certified_pruning.pruning_experiment import PruningConfig, check_pruning, run_pruning

    scales = {
        "smoke": PruningConfig(methods=("imp", "nrs"), rounds=2, structured_rounds=2, channels=(2, 2, 2, 2, 2),
                               fc_width=8, fgsm_epochs=1, crown_epochs=1, hydra_epochs=1, score_batch=16, images=2,
                               timeout=1.0, pgd_steps=5, pgd_restarts=1, alpha_iterations=2),
        # quick: sized so the whole grid fits about an hour on one core (README "Results" has the measured times)
        "quick": PruningConfig(),
        "tour": tour_config(),
        # paper: CIFAR-10, ε = 2/255, cifar_model_deep, 200 epochs per round, 16 rounds × 20 % (unstructured) and
        # 12 rounds × 11 % (channels), 200 images, 300 s per image, PGD 100 × 100, α-CROWN 100 iterations
        "paper": PruningConfig(dataset="cifar10", eps=2 / 255, rounds=16, rate=0.2, structured_rounds=12,
                               structured_rate=0.11, channels=(32, 64, 64, 128, 128), fc_width=100, batch_size=128,
                               fgsm_epochs=200, fgsm_learning_rate=0.01, crown_epochs=200, crown_learning_rate=1e-3,
                               hydra_epochs=20, images=200, timeout=300.0, pgd_steps=100, pgd_restarts=100,
                               alpha_iterations=100, batch_domains=512),
    }
    return Experiment("pruning", "pruning method × training mode × sparsity, each pruned model verified completely "
                      "(clean → PGD → α-CROWN → BaB): certified accuracy, unstable ReLUs, BaB effort",
                      scales, run_pruning, check_pruning, tour_seeds=(0, 1, 2), dtypes=())


def experiments() -> list[Experiment]:
    """Every experiment this package registers (each with smoke, quick and paper configs)."""
    verify_scales = {
        "smoke": VerifyDenseConfig(epochs=1, channels=(2, 2, 2, 2, 2), fc_width=8, images=3, timeout=5.0,
                                   pgd_steps=10, pgd_restarts=2, alpha_iterations=2),
        "quick": VerifyDenseConfig(),
        # paper: cifar_model_deep on CIFAR-10 (Hub), ε = 2/255, 200 images, 300 s
        "paper": VerifyDenseConfig(dataset="cifar10", train_eps=2 / 255, verify_eps=2 / 255, epochs=200,
                                   learning_rate=0.01, channels=(32, 64, 64, 128, 128), fc_width=100, images=200,
                                   timeout=300.0, pgd_restarts=100, alpha_iterations=100),
    }
    # dtypes=(): both experiments train in float32 and bound in float64 whatever --dtype says (ctx.dtype is unused)
    verify_dense = Experiment("verify-dense", "train cifar_model_deep (scaled) and verify it completely: clean → PGD → "
                              "α-CROWN → BaB", verify_scales, run_verify_dense, check_verify_dense, dtypes=())
    return [pruning_experiment(), verify_dense]

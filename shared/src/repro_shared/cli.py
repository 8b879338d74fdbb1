"""``repro``: list, run, report and check the installed reproduction experiments.

Bad input (an unknown experiment, config key or value, missing data) exits with status 2 and one line saying what is
wrong and what would be right, before a run directory is created or anything expensive starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ReproError
from .experiments import ALL_SCALES, SCALE_HELP

if TYPE_CHECKING:
    from .launch import SlurmOptions
    from .runs import RunOptions

EPILOG = """examples:
  repro list
  repro run my-paper:train --scale quick
  repro run my-paper:train --scale quick --set epochs=3 --seed 1
  repro run my-paper:train --scale paper --grid seed=1,2,3 --launcher slurm --slurm-partition gpu
  repro run my-paper:train --scale quick --seeds 0-4
  repro run --all --scale quick
  repro reproduce
  repro report runs/
  repro data fetch --to data/         # every dataset the installed packages declare, SHA-256 verified
  repro doctor
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line plus a pointer to --help (not the whole usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="repro", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    listing = commands.add_parser("list", help="the experiments of every installed package")
    listing.add_argument("--configs", action="store_true", help="also print each experiment's config fields")

    show = commands.add_parser("show", help="print an experiment's resolved config as YAML")
    show.add_argument("experiment", help="package:experiment")
    show.add_argument("--scale", default="quick", choices=ALL_SCALES)
    show.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    show.add_argument("--config", type=Path, help="a YAML preset (see repro run --help)")

    run = commands.add_parser("run", help="run an experiment (or --all) at a scale",
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              description="Run one experiment, a grid of runs of it, or every installed experiment.\n\n"
                              + "\n".join(f"  {scale:6} {text}" for scale, text in SCALE_HELP.items()),
                              epilog="A YAML preset (--config) holds {experiment?, scale?, overrides: {key: value}};\n"
                              "--set overrides it. Run directories: OUT/<package>/<experiment>/<name>/.")
    run.add_argument("experiment", nargs="?", help="package:experiment (see repro list)")
    run.add_argument("--all", action="store_true", help="run every installed experiment")
    run.add_argument("--scale", choices=ALL_SCALES,
                     help="smoke | quick | paper | tour (default: the preset's, else quick)")
    run.add_argument("--config", type=Path, help="a YAML preset (e.g. a file under packages/<name>/configs/)")
    run.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config field; dotted keys for nested fields; repeatable")
    run.add_argument("--seed", type=int, default=0, help="seed of python/numpy/torch (default 0)")
    run.add_argument("--seeds", metavar="SEEDS",
                     help="several seeds as separate, resumable runs: 0-4, or 0,2,7 (same as --grid seed=...); "
                     "`repro report` then aggregates their claims over the seeds")
    run.add_argument("--device", default="auto", help="auto (GPU if present) | cpu | cuda | cuda:N | mps")
    run.add_argument("--dtype", default="auto",
                     help="auto (bf16 on GPUs that support it, else fp32; or the experiment's own) | fp32 | bf16 "
                          "| fp16 | fp64, where the experiment honours it")
    run.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower on GPU)")
    run.add_argument("--out", type=Path, default=Path("runs"), help="runs root (default ./runs)")
    run.add_argument("--name", help="run name (default <scale>-seed<seed>)")
    run.add_argument("--resume", action="store_true", help="continue an existing run from its last checkpoint")
    run.add_argument("--data-dir", type=Path, help="local datasets folder (default $REPRO_DATA_DIR, else the Hub)")
    run.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                     help="run the Cartesian product of values; 'seed' is a key too; repeatable")
    run.add_argument("--launcher", default="local", choices=["local", "submitit-local", "slurm"],
                     help="where grid points run: this process, local subprocesses, or SLURM jobs")
    run.add_argument("--dry-run", action="store_true", help="with --launcher slurm: print the job scripts, submit none")
    run.add_argument("--slurm-partition", help="SLURM partition of every job (default: the cluster's)")
    run.add_argument("--slurm-account", help="SLURM account charged (default: yours)")
    run.add_argument("--slurm-gpus", type=int, default=1, help="GPUs per job (default 1; 0 for CPU jobs)")
    run.add_argument("--slurm-cpus", type=int, default=8, help="CPUs per job (default 8)")
    run.add_argument("--slurm-mem-gb", type=int, default=64, help="memory per job in GB (default 64)")
    run.add_argument("--slurm-time-min", type=int, default=240, help="job time limit in minutes (default 240)")

    report = commands.add_parser(
        "report", help="write report.md (tables, figures, paper vs this run, claims over seeds)",
        description="Write report.md for a run directory or a runs root, and print each claim over the seeds of runs "
        "that differ only in their seed: effect mean ± std (n), 95 %% interval and verdict. Given several run "
        "directories, aggregate exactly those (refused unless they share experiment, scale and config).")
    report.add_argument("path", type=Path, nargs="+", help="a run directory or a runs root; or several run directories")

    reproduce = commands.add_parser(
        "reproduce", help="the headline claims of every installed paper, several seeds each, with verdicts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run every experiment that has a `tour` config at each of its tour seeds (complete runs are "
        "reused, interrupted ones resumed), then print each paper's headline claims over the seeds: effect mean ± "
        "std (n), 95 % interval and verdict (reproduced / contradicted / inconclusive). A failing experiment does "
        "not stop the others; the exit status is 1 if any failed. Sized for about 30 minutes on a 2-core CPU.",
        epilog="examples:\n  repro reproduce\n  repro reproduce --packages my-paper --threads 2\n"
        "  repro reproduce --list")
    reproduce.add_argument("--packages", help="comma-separated packages (default: every installed one)")
    reproduce.add_argument("--list", action="store_true", help="print the planned runs and exit")
    reproduce.add_argument("--out", type=Path, default=Path("runs"), help="runs root (default ./runs)")
    reproduce.add_argument("--device", default="auto", help="auto (GPU if present) | cpu | cuda | cuda:N | mps")
    reproduce.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    reproduce.add_argument("--data-dir", type=Path, help="local datasets folder (default $REPRO_DATA_DIR)")

    _add_data_parser(commands)
    commands.add_parser("doctor", help="versions, device, sources, and the datasets each experiment needs")
    return parser


def _add_data_parser(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="the datasets the installed packages declare: list or fetch them")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    listing = actions.add_parser("list", help="each declared dataset, its files and their public sources")
    listing.add_argument("names", nargs="*", metavar="NAME", help="datasets to show (default: all)")
    listing.add_argument("--files", action="store_true", help="also list every file with its source and recipe")
    fetch = actions.add_parser("fetch", help="build DIR/<dataset>/... from public sources, every file SHA-256 verified",
                               description="Write the data-dir layout the packages read (use it as REPRO_DATA_DIR "
                               "or --data-dir). Files already there with the right hash are kept.")
    fetch.add_argument("names", nargs="*", metavar="NAME",
                       help="datasets to fetch (a folder name selects those under it); default: all declared")
    fetch.add_argument("--to", dest="target", type=Path, required=True, help="the data dir to fill")
    fetch.add_argument("--from", dest="mirror", type=Path,
                       help="copy from a local mirror with the same layout instead of downloading (same checks)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .logging import setup_logging

    setup_logging(-1 if args.quiet else args.verbose)
    try:
        commands = {"list": _list, "show": _show, "run": _run, "report": _report, "doctor": _doctor,
                    "reproduce": _reproduce, "data": _data}
        return commands[args.command](args)
    except ReproError as error:
        print(f"repro: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("repro: interrupted; continue with --resume", file=sys.stderr)
        return 130


def _list(args: argparse.Namespace) -> int:
    from .config import field_paths
    from .experiments import discover

    registry = discover()
    if not registry:
        print("no reproduction packages installed (pip install ./packages/<name>, or uv sync --all-packages)")
    for name, entry in registry.items():
        if entry.error:
            print(f"{name} {entry.version}: FAILED TO LOAD: {entry.error}")
            continue
        print(f"{name} {entry.version}: {len(entry.experiments)} experiment(s)")
        for experiment in entry.experiments:
            print(f"  {experiment.id:40} {experiment.description}")
            if args.configs:
                for key, hint in field_paths(experiment.config_type).items():
                    print(f"      {key}: {getattr(hint, '__name__', hint)}")
    return 0


def _show(args: argparse.Namespace) -> int:
    import yaml

    from .config import config_to_dict
    from .experiments import find_experiment

    experiment = find_experiment(args.experiment)
    options = _options(args, experiment_preset=_preset(args))
    from .launch import build_run_config

    print(yaml.safe_dump(config_to_dict(build_run_config(experiment, options)), sort_keys=False), end="")
    return 0


def _preset(args: argparse.Namespace) -> dict:
    from .config import load_preset

    return load_preset(args.config) if args.config else {"overrides": {}}


def _options(args: argparse.Namespace, experiment_preset: dict) -> RunOptions:
    from .config import parse_assignments
    from .runs import RunOptions
    from .sources import data_dir

    preset_overrides = experiment_preset.get("overrides", {})
    assignments = parse_assignments(args.assignments)
    overrides = {**preset_overrides, **assignments}
    sources = {key: "--set" if key in assignments else f"--config {args.config}" for key in overrides}
    scale = args.scale or experiment_preset.get("scale") or "quick"
    if scale not in ALL_SCALES:
        raise ReproError(f"unknown scale {scale!r}", f"use one of {', '.join(ALL_SCALES)}")
    get = vars(args).get
    return RunOptions(
        scale=scale, seed=get("seed") or 0, device=get("device") or "auto", dtype=get("dtype") or "auto",
        threads=get("threads"), deterministic=bool(get("deterministic")), out=get("out") or Path("runs"),
        name=get("name"), resume=bool(get("resume")), data_dir=data_dir(get("data_dir")), overrides=overrides,
        override_sources=sources,
    )


def slurm_options(args: argparse.Namespace) -> SlurmOptions:
    """The ``--slurm-*`` flags as the SlurmOptions that ``launch`` gives every job."""
    from .launch import SlurmOptions

    return SlurmOptions(partition=args.slurm_partition, account=args.slurm_account, gpus_per_node=args.slurm_gpus,
                        cpus_per_task=args.slurm_cpus, mem_gb=args.slurm_mem_gb, timeout_min=args.slurm_time_min)


def _run(args: argparse.Namespace) -> int:
    from .experiments import find_experiment
    from .launch import launch, parse_grid, plan_grid

    slurm = slurm_options(args)
    if args.dry_run and args.launcher != "slurm":
        raise ReproError("--dry-run prints SLURM job scripts", "add --launcher slurm")
    preset = _preset(args)
    spec = args.experiment or preset.get("experiment")
    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            raise ReproError(f"--data-dir {args.data_dir}: no such directory")
        os.environ["REPRO_DATA_DIR"] = str(args.data_dir.resolve())  # so that library code resolves data there too
    if args.all:
        if spec or args.assignments or args.grid or args.config:
            raise ReproError("--all runs every experiment with its own defaults",
                             "drop the experiment name, --set, --grid and --config, or drop --all")
        return _run_all(args)
    if not spec:
        raise ReproError("no experiment given", "name one (see repro list), or pass --all")
    experiment = find_experiment(spec)
    options = _options(args, preset)
    grid = parse_grid(args.grid)
    if args.seeds:
        if "seed" in grid:
            raise ReproError("--seeds and --grid seed=... both give seeds", "use one of them")
        grid["seed"] = [str(seed) for seed in parse_seeds(args.seeds)]
    planned = plan_grid(experiment, options, grid)
    for run_dir in launch(experiment, planned, args.launcher, slurm, dry_run=args.dry_run):
        print(run_dir)
    return 0


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → 0..4, ``"0,2,7"`` → [0, 2, 7]; ranges and lists combine (``"0-2,9"``); duplicates refused."""
    seeds: list[int] = []
    for part in filter(None, (item.strip() for item in text.split(","))):
        low, dash, high = part.partition("-")
        try:
            values = range(int(low), int(high) + 1) if dash and low else [int(part)]
        except ValueError:
            raise ReproError(f"--seeds {text!r}: {part!r} is not a seed or a range", "e.g. --seeds 0-4") from None
        if dash and low and int(high) < int(low):
            raise ReproError(f"--seeds {text!r}: range {part!r} is empty", "write low-high, e.g. 0-4")
        seeds.extend(values)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ReproError(f"--seeds {text!r}: give distinct seeds", "e.g. --seeds 0-4 or --seeds 0,1,2")
    return seeds


def _installed_experiments(packages: str | None = None) -> list:
    from .experiments import discover

    registry = discover()
    if packages:
        wanted = [name.strip() for name in packages.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in registry]
        if unknown:
            raise ReproError(f"--packages: {', '.join(unknown)} not installed",
                             f"installed: {', '.join(registry) or 'none'}")
        registry = {name: registry[name] for name in wanted}
    broken = [f"{name} ({entry.error})" for name, entry in registry.items() if entry.error]
    if broken:
        raise ReproError(f"packages failed to load their experiments: {'; '.join(broken)}")
    return [exp for entry in registry.values() for exp in entry.experiments]


def _finish_batch(outcome, total: int, out: Path) -> int:
    from .batch import failure_summary

    print(out / "report.md")
    if not outcome.ok:
        print(f"repro: {failure_summary(outcome, total)}", file=sys.stderr)
        return 1
    return 0


def _run_all(args: argparse.Namespace) -> int:
    import dataclasses

    from .batch import PlannedRun, run_batch

    experiments = _installed_experiments()
    if not experiments:
        print("no experiments installed: nothing to run (see repro list)")
        return 0
    options = _options(args, {"overrides": {}})
    seeds = parse_seeds(args.seeds) if args.seeds else [options.seed]
    plan = [PlannedRun(experiment, dataclasses.replace(options, seed=seed)) for experiment in experiments
            for seed in seeds]
    if args.launcher != "local":
        return _submit_all(plan, args)
    outcome = run_batch(plan, options.out)
    return _finish_batch(outcome, len(plan), options.out)


def _submit_all(plan: list, args: argparse.Namespace) -> int:
    """``--all`` through SLURM (or submitit-local): every run submitted with the same resources; failures listed."""
    import shutil

    from .launch import launch

    if args.launcher == "slurm" and not args.dry_run and shutil.which("sbatch") is None:
        raise ReproError("--launcher slurm: sbatch is not on PATH (no SLURM here)",
                         "run on a SLURM login node, or add --dry-run to print the job scripts")
    slurm = slurm_options(args)
    failed = []
    for planned in plan:
        try:
            for run_dir in launch(planned.experiment, [planned.options], args.launcher, slurm, dry_run=args.dry_run):
                print(run_dir)
        except Exception as error:  # one experiment that cannot be submitted must not stop the others
            print(f"repro: {planned.label}: error: {error}", file=sys.stderr)
            failed.append(planned.label)
    if failed:
        print(f"repro: {len(failed)} of {len(plan)} runs failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from .aggregate import group_by_config, group_text, read_run
    from .batch import PlannedRun, run_batch
    from .experiments import TOUR
    from .runs import RunOptions
    from .sources import data_dir

    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            raise ReproError(f"--data-dir {args.data_dir}: no such directory")
        os.environ["REPRO_DATA_DIR"] = str(args.data_dir.resolve())
    tours = [exp for exp in _installed_experiments(args.packages) if exp.has_tour]
    if not tours:
        print("no installed experiment has a tour config: nothing to reproduce (see repro list)")
        return 0
    plan = [PlannedRun(exp, RunOptions(scale=TOUR, seed=seed, device=args.device, threads=args.threads,
                                       out=args.out, data_dir=data_dir(args.data_dir)))
            for exp in tours for seed in exp.tour_seeds]
    if args.list:
        for planned in plan:
            print(f"{planned.label:60} -> {planned.run_dir.path}")
        return 0
    outcome = run_batch(plan, args.out)
    print(f"\nrepro reproduce: {len(plan)} runs in {outcome.seconds / 60:.1f} min")
    done = {path.resolve() for path in outcome.completed}
    runs = [read_run(planned.run_dir.path) for planned in plan if planned.run_dir.path.resolve() in done]
    for text in filter(None, (group_text(group) for group in group_by_config(runs))):
        print(text)
    return _finish_batch(outcome, len(plan), args.out)


def _report(args: argparse.Namespace) -> int:
    from .aggregate import check_same_config, group_by_config, group_text, read_run
    from .report import find_runs, write_report

    for path in args.path:
        if not path.exists():
            raise ReproError(f"{path}: no such run directory or runs root")
    if len(args.path) > 1:
        if not all((path / "results.json").is_file() for path in args.path):
            raise ReproError("several paths must each be a finished run directory (with results.json)",
                             "or pass one runs root")
        runs = [read_run(path) for path in args.path]
        check_same_config(runs)
        groups = [runs]
        for path in args.path:
            print(write_report(path))
    else:
        print(write_report(args.path[0]))
        run_dirs = find_runs(args.path[0])
        groups = group_by_config(read_run(path) for path in run_dirs)
    for text in filter(None, (group_text(group, require_evidence=True) for group in groups)):
        print(text)
    return 0


def _data(args: argparse.Namespace) -> int:
    from .fetch import declared_datasets, fetch_datasets, select_specs

    specs = select_specs(declared_datasets(), args.names)
    if args.data_command == "list":
        return _data_list(specs, args.files)
    if args.target.exists() and not args.target.is_dir():
        raise ReproError(f"--to {args.target}: exists and is not a directory")
    for result in fetch_datasets(specs, args.target, args.mirror):
        print(f"{result.name}: {len(result.written)} file(s) written, {len(result.already_present)} already "
              f"present and verified -> {result.folder}")
    print(f"use it with: export REPRO_DATA_DIR={args.target.resolve()}  (or --data-dir {args.target})")
    return 0


def _data_list(specs: list, show_files: bool) -> int:
    if not specs:
        print("the installed packages declare no datasets")
    for spec in specs:
        unsourced = sum(not file.sources for file in spec.files)
        only_mirror = f", {unsourced} only from a mirror (--from)" if unsourced else ""
        print(f"{spec.name}: {len(spec.files)} file(s){only_mirror}; {spec.description}")
        for file in spec.files if show_files else ():
            print(f"  {file.path}  sha256={file.sha256[:12]}…  {file.describe()}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import diagnose

    for section, rows in diagnose().items():
        print(section)
        for key, value in rows.items():
            print(f"  {key:26} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

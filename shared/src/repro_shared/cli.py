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
  repro run --all --scale quick
  repro report runs/
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
    run.add_argument("--device", default="auto", help="auto (GPU if present) | cpu | cuda | cuda:N | mps")
    run.add_argument("--dtype", default="auto", help="auto (bf16 on GPUs that support it, else fp32) | fp32 | bf16")
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

    report = commands.add_parser("report", help="write report.md (tables, figures, paper vs this run)")
    report.add_argument("path", type=Path, help="a run directory or a runs root")

    commands.add_parser("doctor", help="versions, device, and which model/data sources are reachable")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .logging import setup_logging

    setup_logging(-1 if args.quiet else args.verbose)
    try:
        return {"list": _list, "show": _show, "run": _run, "report": _report, "doctor": _doctor}[args.command](args)
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
    planned = plan_grid(experiment, options, parse_grid(args.grid))
    for run_dir in launch(experiment, planned, args.launcher, slurm, dry_run=args.dry_run):
        print(run_dir)
    return 0


def _run_all(args: argparse.Namespace) -> int:
    from .experiments import discover
    from .launch import launch
    from .report import write_report

    registry = discover()
    experiments = [exp for entry in registry.values() for exp in entry.experiments]
    broken = [f"{name} ({entry.error})" for name, entry in registry.items() if entry.error]
    if broken:
        raise ReproError(f"packages failed to load their experiments: {'; '.join(broken)}")
    if not experiments:
        print("no experiments installed: nothing to run (see repro list)")
        return 0
    options = _options(args, {"overrides": {}})
    failed = []
    for experiment in experiments:
        try:
            launch(experiment, [options], args.launcher, slurm_options(args), dry_run=args.dry_run)
        except ReproError as error:
            print(f"repro: {experiment.id}: error: {error}", file=sys.stderr)
            failed.append(experiment.id)
    print(write_report(options.out))
    if failed:
        print(f"repro: {len(failed)} of {len(experiments)} experiments failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    if not args.path.exists():
        raise ReproError(f"{args.path}: no such run directory or runs root")
    print(write_report(args.path))
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

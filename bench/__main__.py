"""``python -m bench [BENCHMARK] [options]`` (``make bench``): run NeoMesh benchmarks.

With no arguments, every benchmark runs in turn (``make bench``); options alone, e.g. ``--quick``,
go to the default one (transfer). Each benchmark is a module exposing ``NAME``,
``DESCRIPTION``, ``add_arguments(parser)`` and ``run(args) -> exit code``; add new ones to
``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import sys

from bench import api, at_rest, delivery, hostile, portal_scale, throughput, transfer

BENCHMARKS = [transfer, portal_scale, throughput, hostile, api, at_rest, delivery]
DEFAULT = transfer.NAME


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for module in BENCHMARKS:
        module.add_arguments(commands.add_parser(module.NAME, help=module.DESCRIPTION))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return run_all()
    names = {module.NAME for module in BENCHMARKS}
    if not argv or (argv[0] not in names and argv[0] not in {"-h", "--help"}):
        argv = [DEFAULT, *argv]  # `python -m bench --quick` means the default benchmark
    args = build_parser().parse_args(argv)
    module = next(module for module in BENCHMARKS if module.NAME == args.benchmark)
    return module.run(args)


def run_all() -> int:
    """`make bench`: every benchmark in turn with its default options; fails if any failed."""
    failed = []
    for module in BENCHMARKS:
        print(f"\n=== {module.NAME}: {module.DESCRIPTION} ===\n", flush=True)
        if module.run(build_parser().parse_args([module.NAME])) != 0:
            failed.append(module.NAME)
    if failed:
        print(f"\nBenchmarks that did not complete: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

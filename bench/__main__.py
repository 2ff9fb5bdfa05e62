"""``python -m bench [BENCHMARK] [options]`` (``make bench``): run NeoMesh benchmarks.

With no benchmark name, the default one runs. Each benchmark is a module exposing ``NAME``,
``DESCRIPTION``, ``add_arguments(parser)`` and ``run(args) -> exit code``; add new ones to
``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import sys

from bench import portal_scale, transfer

BENCHMARKS = [transfer, portal_scale]
DEFAULT = transfer.NAME


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for module in BENCHMARKS:
        module.add_arguments(commands.add_parser(module.NAME, help=module.DESCRIPTION))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {module.NAME for module in BENCHMARKS}
    if not argv or (argv[0] not in names and argv[0] not in {"-h", "--help"}):
        argv = [DEFAULT, *argv]  # `python -m bench --quick` means the default benchmark
    args = build_parser().parse_args(argv)
    module = next(module for module in BENCHMARKS if module.NAME == args.benchmark)
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())

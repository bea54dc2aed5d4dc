"""The `edgefab` command line: one entry point, each package contributes its own subcommands.

Every package that has commands exposes `register(subparsers)` in its own `cli.py`;
handlers import their heavy dependencies lazily so `edgefab --help` stays fast on a Pi.
A handler returns the process exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES = (
    "edge_config.cli",  # config check
    "simulators.cli",  # simulate
    "connectors.modbus.cli",  # modbus probe
    "connectors.opcua.cli",  # opcua cert / browse
    "gateway.run_cli",  # run / demo / status
    "mes_lite.cli",  # mes init / migrate / run / serve
    "dashboards.cli",  # dashboards push
    "gateway.alarms.cli",  # alarms list / test-notify / writes
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgefab", description="edgefab: industrial-IoT starter kit")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

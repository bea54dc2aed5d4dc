"""`edgefab config check FILE...` and `edgefab config show FILE`.

check prints one line per problem (`file:line:col: key.path: message`) and exits 1, or a
one-line summary and exits 0. Neither command ever shows a Python traceback: an unexpected
failure is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from enum import Enum
from typing import Any

SECRET_WORDS = ("password", "token", "secret")


def register(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser("config", help="check or show a site configuration")
    commands = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    check = commands.add_parser("check", help="validate site YAML files; print every problem as file:line:col")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=check_command)
    show = commands.add_parser("show", help="print the resolved configuration (includes, profiles, ${VAR}) as YAML")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--show-secrets", action="store_true", help="do not mask passwords and tokens")
    show.set_defaults(func=show_command)


def check_command(args: argparse.Namespace) -> int:
    worst = 0
    for file in args.files:
        try:
            worst = max(worst, _check_one(file))
        except Exception as error:  # never a traceback for the user
            print(f"{file}: internal error while checking: {type(error).__name__}: {error}", file=sys.stderr)
            worst = 2
    return worst


def _check_one(file: str) -> int:
    from edge_config.loader import ConfigError, load_config

    try:
        config = load_config(file)
    except ConfigError as error:
        for problem in error.problems:
            print(problem)
        return 1
    tags = sum(len(d.tags) for d in config.devices)
    sinks = [name for name in ("mqtt", "influxdb") if getattr(config.sinks, name) is not None]
    print(
        f"{file}: OK: {len(config.devices)} devices, {tags} tags, "
        f"{len(sinks)} sinks ({', '.join(sinks) if sinks else 'none'})"
    )
    return 0


def show_command(args: argparse.Namespace) -> int:
    try:
        from edge_config.loader import ConfigError, load_config

        try:
            config = load_config(args.file)
        except ConfigError as error:
            for problem in error.problems:
                print(problem)
            return 1
        from ruamel.yaml import YAML

        data = plain_data(config.model_dump(mode="python", exclude_none=True))
        if not args.show_secrets:
            data = mask_secrets(data)
        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.sort_base_mapping_type_on_output = False  # keep schema order
        yaml.dump(data, sys.stdout)
        return 0
    except BrokenPipeError:  # `edgefab config show x | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # never a traceback for the user
        print(f"{args.file}: internal error while showing: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


def mask_secrets(data: Any) -> Any:
    """Passwords, tokens and private keys replaced by '***' (empty values stay empty)."""
    if isinstance(data, dict):
        return {
            k: ("***" if v and isinstance(k, str) and any(w in k for w in SECRET_WORDS) else mask_secrets(v))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [mask_secrets(v) for v in data]
    return data


def plain_data(data: Any) -> Any:
    """Enums as their YAML spelling; everything else as dumped (integer map keys stay integers)."""
    if isinstance(data, dict):
        return {plain_data(k): plain_data(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [plain_data(v) for v in data]
    if isinstance(data, Enum):
        return data.value
    return data

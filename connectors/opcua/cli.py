"""Subcommands of this package (see gateway.cli). Not yet implemented."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """No commands yet."""

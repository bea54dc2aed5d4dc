"""`edgefab simulate`: run the small simulated factory until SIGINT/SIGTERM (see gateway.cli)."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulators.factory import SimulatedFactory

log = logging.getLogger("edgefab.simulate")

STATUS_LOG_INTERVAL_S = 10.0
# The same defaults as simulators.factory (kept literal so `edgefab --help` does not import the models;
# a test keeps them equal) and as edge_config/examples/demo-factory.yaml.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MODBUS_PORT = 5020
DEFAULT_OPCUA_PORT = 4840


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "simulate",
        help="run the simulated factory (presses and a moulding machine on Modbus TCP, a CNC on OPC UA)",
        description="Run the simulated factory that edge_config/examples/demo-factory.yaml describes. "
        "Stops cleanly on Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed: same seed, same history (default 1)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall-clock second")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument(
        "--modbus-port", type=int, default=DEFAULT_MODBUS_PORT, help="Modbus TCP port (default %(default)s)"
    )
    parser.add_argument("--opcua-port", type=int, default=DEFAULT_OPCUA_PORT, help="OPC UA port (default %(default)s)")
    parser.add_argument("--update-interval", type=float, default=0.1, help="seconds between model updates")
    parser.add_argument(
        "--ground-truth", type=Path, metavar="FILE", help="write the ground-truth log (JSON) here on exit"
    )
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop by itself after this many wall-clock seconds"
    )
    parser.set_defaults(func=run_simulate)


def _check(args: argparse.Namespace) -> str | None:
    if args.speed <= 0:
        return f"--speed must be positive, got {args.speed}"
    if args.update_interval <= 0:
        return f"--update-interval must be positive, got {args.update_interval}"
    for option, port in (("--modbus-port", args.modbus_port), ("--opcua-port", args.opcua_port)):
        if not 1 <= port <= 65535:
            return f"{option} must be a port number 1..65535, got {port}"
    if args.ground_truth is not None:
        folder = args.ground_truth.resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            return f"--ground-truth: cannot write into {folder}"
    return None


def run_simulate(args: argparse.Namespace) -> int:
    import asyncio

    if not getattr(args, "verbose", False):
        logging.getLogger("asyncua").setLevel(logging.WARNING)  # asyncua logs every standard node at INFO
    problem = _check(args)
    if problem:
        print(f"edgefab simulate: {problem}")
        return 2
    try:
        return asyncio.run(_simulate(args))
    except OSError as e:  # typically: the port is taken
        print(f"edgefab simulate: cannot listen: {e.strerror or e}")
        return 1


async def _simulate(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from simulators.factory import SimulatedFactory

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    factory = SimulatedFactory(
        seed=args.seed,
        speed=args.speed,
        host=args.host,
        modbus_port=args.modbus_port,
        opcua_port=args.opcua_port,
        update_interval_s=args.update_interval,
    )
    await factory.start()
    try:
        log.info("serving %d machines, seed %d, speed x%g", len(factory.machines), args.seed, args.speed)
        for line in factory.describe():
            log.info("  %s", line)
        log.info("ready")
        deadline = loop.time() + args.duration if args.duration else None
        while not stop.is_set():
            timeout = STATUS_LOG_INTERVAL_S
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - loop.time()))
            try:
                await asyncio.wait_for(stop.wait(), timeout)
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    break
                log.info("%s", _status_line(factory))
    finally:
        log.info("stopping")
        await factory.stop()
        if args.ground_truth is not None:
            args.ground_truth.write_text(json.dumps(factory.ground_truth_json(), indent=1))
            log.info("ground truth written to %s", args.ground_truth)
    return 0


def _status_line(factory: SimulatedFactory) -> str:
    parts = []
    for name in factory.machines:
        snap = factory.snapshot(name)
        parts.append(f"{name} {snap.state.value} total={snap.parts_total} rejects={snap.parts_rejected}")
    return "; ".join(parts)

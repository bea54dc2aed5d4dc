"""Benchmark: `edgefab run` end to end at 10,000 values/s with the durable buffer on.

Load (issue 3): 10 simulated Modbus TCP devices x 100 holding registers polled every
100 ms, published to a private Mosquitto at QoS 1 in the `uns-batch` format (one message
per device per delivered batch), buffer `fsync: batch`. The PLCs run in a child process,
the gateway is a real `edgefab run` process (its CPU and RSS are what is measured), the
subscriber runs in this process.

Reported:
  live:   values/s delivered to the subscriber, values/s read, gateway CPU s per 10,000
          values, gateway peak RSS, delay p50/p95/p99 from a value changing in the
          simulator to its arrival at the subscriber;
  outage: Mosquitto killed for --outage-s, then restarted: backlog, drain time, drain rate
          (and its ratio to the live rate);
  influx: values/s delivered to InfluxDB's v2 write API (VictoriaMetrics), CPU per 10k;
  demo:   peak RSS of `edgefab run` with the demo factory (`edgefab simulate`).

Delay: register 0 of every device holds the simulator's wall clock in ms (mod 65536),
rewritten every 5 ms, so delay = arrival time - the time the value read was written:
Modbus read + gateway (pipeline, SQLite commit, forwarder) + broker + subscriber. It
does not include the up to 100 ms a changed value waits for the next poll.

Usage: python benchmarks/gateway_throughput.py [--seconds 30] [--outage-s 60] [--influx-seconds 20]
       [--demo-seconds 20] [--devices 10] [--registers 100] [--interval-ms 100] [--format uns-batch]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- child: the simulated PLCs


async def serve(devices: int, registers: int, interval_ms: int) -> None:
    from connectors.modbus.address import Table
    from simulators.modbus_server import ModbusSimServer, RegisterBank

    banks = [RegisterBank(sizes={Table.HOLDING_REGISTER: registers}) for _ in range(devices)]
    servers = [ModbusSimServer("127.0.0.1", 0, {1: bank}) for bank in banks]
    for server in servers:
        await server.start()
    print(json.dumps([s.port for s in servers]), flush=True)
    n, next_change = 0, 0.0
    while True:
        stamp = int(time.time() * 1000) & 0xFFFF
        now = time.monotonic()
        if now >= next_change:  # every value changes once per poll interval
            n = (n + 1) % 60000
            next_change = now + interval_ms / 1000
            for bank in banks:
                bank.set_registers(Table.HOLDING_REGISTER, 1, [(n + i) % 65536 for i in range(registers - 1)])
        for bank in banks:
            bank.set_registers(Table.HOLDING_REGISTER, 0, [stamp])
        await asyncio.sleep(0.005)


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def cpu_s(pid: int) -> float:
    return sum(cpu_user_sys_s(pid))


def cpu_user_sys_s(pid: int) -> tuple[float, float]:
    """User and system (kernel: socket sends, SQLite's file writes) CPU seconds of the process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS  # utime, stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def healthz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        return json.loads(r.read())


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Mosquitto:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 1000000\nmax_inflight_messages 100\n"
        )
        self.exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class Subscriber:
    """Counts values arriving in uns-batch, uns-json or Sparkplug B DDATA messages and measures register-0 delays."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.values = 0
        self.delays_ms: list[float] = []
        self.measuring = False
        self._lock = threading.Lock()
        self._r000_alias: dict[str, int] = {}  # Sparkplug device topic suffix -> alias of r000 (from its DBIRTH)
        self.subscribed = threading.Event()
        client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-subscriber")
        client.on_connect = lambda c, *_: c.subscribe([("bench/#", 1), ("spBv1.0/#", 1)])
        client.on_subscribe = lambda *_: self.subscribed.set()
        client.on_disconnect = lambda *_: self.subscribed.clear()
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 1)
        client.connect("127.0.0.1", port)
        client.loop_start()
        self.client = client

    def _on_message(self, _c: object, _u: object, msg: object) -> None:
        now_ms = int(time.time() * 1000)
        if msg.topic.startswith("spBv1.0/"):  # type: ignore[attr-defined]
            self._on_sparkplug(msg.topic, msg.payload, now_ms)  # type: ignore[attr-defined]
            return
        if "/_gateway/" in msg.topic or not self.measuring:  # type: ignore[attr-defined]
            return  # the gateway's status; outside the live window, spare the shared CPU the parsing
        doc = json.loads(msg.payload)  # type: ignore[attr-defined]
        samples = doc["samples"] if "samples" in doc else [dict(doc, tag=msg.topic.rsplit("/", 1)[1])]  # type: ignore[attr-defined]
        with self._lock:
            self.values += len(samples)
            for s in samples:
                if s["tag"] == "r000" and isinstance(s.get("value"), int):
                    self.delays_ms.append((now_ms - s["value"]) & 0xFFFF)

    def _on_sparkplug(self, topic: str, payload: bytes, now_ms: int) -> None:
        from gateway.sinks.sparkplug_proto import Payload

        kind, device = topic.split("/")[2], topic.split("/", 4)[-1]
        if kind == "DBIRTH":  # aliases are declared here; DDATA carries only aliases
            for metric in Payload.FromString(payload).metrics:
                if metric.name == "r000":
                    self._r000_alias[device] = metric.alias
        elif kind == "DDATA" and self.measuring:
            metrics = Payload.FromString(payload).metrics
            alias = self._r000_alias.get(device)
            with self._lock:
                self.values += len(metrics)
                for metric in metrics:
                    if metric.alias == alias and not metric.is_null:
                        self.delays_ms.append((now_ms - metric.int_value) & 0xFFFF)

    def take(self) -> tuple[int, list[float]]:
        with self._lock:
            values, delays = self.values, self.delays_ms
            self.values, self.delays_ms = 0, []
            return values, delays

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def write_config(path: Path, ports: list[int], registers: int, interval_ms: int, sinks: str, buffer: Path) -> None:
    devices = "\n".join(
        f"  - {{name: dev{d:02d}, area: bench, line: line1, profile: plc, poll: {interval_ms}ms,"
        f" connection: {{host: 127.0.0.1, port: {port}, unit: 1, timeout: 1s}}}}"
        for d, port in enumerate(ports)
    )
    tags = "\n".join(f"      r{i:03d}: {{address: hr4{i + 1:04d}}}" for i in range(registers))
    path.write_text(
        f"site: {{enterprise: bench, site: lab}}\ngateway: {{name: bench-gw}}\n"
        f"profiles:\n  plc:\n    protocol: modbus\n    tags:\n{tags}\n"
        f"devices:\n{devices}\n{sinks}\nbuffer: {{path: '{buffer}', fsync: batch, max_bytes: 2GiB}}\n"
    )


PROFILE: list[str] = []
"""`--profile FILE`: run the (first) gateway under cProfile, for finding where the CPU goes."""

SWITCH_INTERVAL_S: list[float] = []
"""`--switch-interval-ms`: the gateway's GIL switch interval instead of the one `edgefab run` sets."""
_PINNED_SWITCH_INTERVAL = (
    "import sys; sys.setswitchinterval({0}); sys.setswitchinterval = lambda s: None; "
    "sys.argv[0] = 'edgefab'; from gateway.cli import main; sys.exit(main())"
)


def start_gateway(config: Path, health_port: int, log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - handed to the child
    profile = ["-m", "cProfile", "-o", PROFILE.pop()] if PROFILE else []
    entry = ["-m", "gateway.cli"]
    if SWITCH_INTERVAL_S:  # measure another GIL switch interval than the one `edgefab run` sets
        entry = ["-c", _PINNED_SWITCH_INTERVAL.format(SWITCH_INTERVAL_S[0])]
    proc = subprocess.Popen(
        [sys.executable, *profile, *entry, "run", str(config), "--health-port", str(health_port)],
        stdout=out,
        stderr=out,
        cwd=ROOT,
    )
    wait_for_port(health_port, 30)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def total_read(doc: dict) -> int:
    return sum(c["samples_read"] for c in doc["connectors"].values())


# ---------------------------------------------------------------- phases


def live_phase(args: argparse.Namespace, gateway: subprocess.Popen[bytes], health_port: int, sub: Subscriber) -> float:
    time.sleep(args.warmup)
    sub.take()
    sub.measuring = True
    read0, cpu0, t0 = total_read(healthz(health_port)), cpu_s(gateway.pid), time.monotonic()
    user0, sys0 = cpu_user_sys_s(gateway.pid)
    time.sleep(args.seconds)
    delivered, delays = sub.take()
    elapsed = time.monotonic() - t0
    read, cpu = total_read(healthz(health_port)) - read0, cpu_s(gateway.pid) - cpu0
    user1, sys1 = cpu_user_sys_s(gateway.pid)
    sub.measuring = False
    target = args.devices * args.registers * 1000 / args.interval_ms
    live_rate = delivered / elapsed
    print(f"\nlive ({args.seconds:.0f} s, format {args.format}, QoS 1, buffer fsync=batch):")
    print(f"  values/s delivered      {live_rate:10,.0f}   (offered {target:,.0f}; read {read / elapsed:,.0f}/s)")
    print(
        f"  CPU s per 10,000 values {cpu / max(read, 1) * 10_000:10.3f}   (gateway process, {cpu / elapsed:.2f} cores;"
        f" user {(user1 - user0) / max(read, 1) * 10_000:.3f} + system {(sys1 - sys0) / max(read, 1) * 10_000:.3f})"
    )
    print(f"  peak RSS                {peak_rss_mb(gateway.pid):10.1f} MB")
    print(
        f"  delay p50/p95/p99       {percentile(delays, 50):6.0f} / {percentile(delays, 95):.0f} / "
        f"{percentile(delays, 99):.0f} ms   ({len(delays)} samples)"
    )
    return live_rate


def outage_phase(
    args: argparse.Namespace, health_port: int, mosquitto: Mosquitto, sub: Subscriber, live_rate: float
) -> None:
    print(f"\noutage: Mosquitto killed for {args.outage_s:.0f} s, then restarted")
    mosquitto.kill()
    time.sleep(args.outage_s)
    doc = healthz(health_port)
    backlog = doc["sinks"]["mqtt"]["depth"]
    delivered0 = doc["sinks"]["mqtt"]["samples_delivered"]
    mosquitto.start()
    restarted = time.monotonic()
    sub.subscribed.wait(10)
    while not doc["sinks"]["mqtt"]["connected"] and time.monotonic() - restarted < 60:
        time.sleep(0.02)
        doc = healthz(health_port)
    t0 = time.monotonic()
    backlog = doc["sinks"]["mqtt"]["depth"]
    delivered0 = doc["sinks"]["mqtt"]["samples_delivered"]
    live_cycle = args.devices * args.registers * 2
    depth = backlog
    while time.monotonic() - t0 < args.outage_s * 2 + 30:
        doc = healthz(health_port)
        depth = doc["sinks"]["mqtt"]["depth"]
        if depth <= live_cycle:
            break
        time.sleep(0.1)
    drain_s = time.monotonic() - t0
    delivered = doc["sinks"]["mqtt"]["samples_delivered"] - delivered0
    rate = delivered / drain_s
    print(f"  gateway reconnected     {t0 - restarted:10.1f} s after the broker restarted (sink backoff)")
    print(f"  backlog                 {backlog:10,} values")
    print(f"  drained in              {drain_s:10.1f} s   (queue depth {depth:,} at the end)")
    print(
        f"  drain rate              {rate:10,.0f} values/s delivered while catching up "
        f"({rate / max(live_rate, 1):.1f} x the live rate; backlog alone {backlog / drain_s:,.0f}/s, "
        "from reconnect to an empty queue)"
    )
    print(f"  dropped                 {doc['sinks']['mqtt']['dropped']:10,}")


def influx_phase(args: argparse.Namespace, workdir: Path, ports: list[int]) -> None:
    exe = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
    if not os.path.exists(exe):
        print("\ninflux: skipped (install the Debian package 'victoria-metrics')")
        return
    vm_port = free_port()
    vm = subprocess.Popen(
        [exe, f"-storageDataPath={workdir / 'vm'}", f"-httpListenAddr=127.0.0.1:{vm_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(vm_port)
        config = workdir / "influx.yaml"
        sinks = f"sinks:\n  influxdb: {{url: 'http://127.0.0.1:{vm_port}', org: '-', bucket: bench, batch_size: 5000}}"
        write_config(config, ports, args.registers, args.interval_ms, sinks, workdir / "buffer-influx.db")
        health_port = free_port()
        gateway = start_gateway(config, health_port, workdir / "gateway-influx.log")
        try:
            time.sleep(args.warmup)
            doc = healthz(health_port)
            d0, r0, c0, t0 = (
                doc["sinks"]["influxdb"]["samples_delivered"],
                total_read(doc),
                cpu_s(gateway.pid),
                time.monotonic(),
            )
            time.sleep(args.influx_seconds)
            doc = healthz(health_port)
            elapsed = time.monotonic() - t0
            delivered = doc["sinks"]["influxdb"]["samples_delivered"] - d0
            read, cpu = total_read(doc) - r0, cpu_s(gateway.pid) - c0
            print(f"\ninflux ({args.influx_seconds:.0f} s, v2 write API to VictoriaMetrics, batch 5000):")
            print(f"  values/s delivered      {delivered / elapsed:10,.0f}   (read {read / elapsed:,.0f}/s)")
            print(f"  CPU s per 10,000 values {cpu / max(read, 1) * 10_000:10.3f}")
            print(f"  queue depth at the end  {doc['sinks']['influxdb']['depth']:10,}")
        finally:
            stop(gateway)
    finally:
        vm.terminate()
        vm.wait(20)


def demo_phase(args: argparse.Namespace, workdir: Path, mosquitto: Mosquitto) -> None:
    modbus_port, opcua_port, health_port = free_port(), free_port(), free_port()
    env = dict(
        os.environ,
        DEMO_MODBUS_PORT=str(modbus_port),
        DEMO_OPCUA_PORT=str(opcua_port),
        MQTT_URL=f"mqtt://127.0.0.1:{mosquitto.port}",
        EDGEFAB_BUFFER=str(workdir / "demo-buffer.db"),
    )
    sim = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "simulate", "--modbus-port", str(modbus_port), "--opcua-port",
         str(opcua_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        wait_for_port(modbus_port, 30)
        wait_for_port(opcua_port, 30)
        demo_config = ROOT / "edge_config" / "examples" / "demo-factory.yaml"
        log = open(workdir / "gateway-demo.log", "ab")  # noqa: SIM115
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", str(demo_config), "--health-port", str(health_port)],
            stdout=log, stderr=log, env=env, cwd=ROOT,
        )  # fmt: skip
        try:
            wait_for_port(health_port, 30)
            time.sleep(args.demo_seconds)
            doc = healthz(health_port)
            print(f"\ndemo factory ({args.demo_seconds:.0f} s, 4 machines, Modbus + OPC UA, uns-json):")
            print(f"  peak RSS of edgefab run {peak_rss_mb(gateway.pid):10.1f} MB")
            print(f"  samples read            {total_read(doc):10,}   ({doc['samples_read_per_s']:.0f}/s)")
        finally:
            stop(gateway)
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["bench", "simulator"], default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--registers", type=int, default=100)
    parser.add_argument("--interval-ms", type=int, default=100)
    parser.add_argument("--format", choices=["uns-batch", "uns-json", "sparkplug-b"], default="uns-batch")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="live measurement")
    parser.add_argument("--outage-s", type=float, default=60.0, help="broker outage (0 = skip)")
    parser.add_argument("--influx-seconds", type=float, default=20.0, help="0 = skip")
    parser.add_argument("--demo-seconds", type=float, default=20.0, help="0 = skip")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the gateway of the live phase into FILE")
    parser.add_argument(
        "--switch-interval-ms", type=float, help="run the gateway with this GIL switch interval (default: its own)"
    )
    args = parser.parse_args()
    if args.switch_interval_ms:
        SWITCH_INTERVAL_S.append(args.switch_interval_ms / 1000)
    if args.profile:
        PROFILE.append(str(Path(args.profile).resolve()))
    if args.role == "simulator":
        asyncio.run(serve(args.devices, args.registers, args.interval_ms))
        return

    workdir = Path(tempfile.mkdtemp(prefix="edgefab-bench-", dir=ROOT / "var" if (ROOT / "var").exists() else None))
    sim = subprocess.Popen(
        [sys.executable, __file__, "--role", "simulator", "--devices", str(args.devices), "--registers",
         str(args.registers), "--interval-ms", str(args.interval_ms)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    mosquitto = Mosquitto(workdir)
    try:
        assert sim.stdout is not None
        ports = json.loads(sim.stdout.readline())
        mosquitto.start()
        sinks = f"sinks:\n  mqtt: {{url: 'mqtt://127.0.0.1:{mosquitto.port}', qos: 1, format: {args.format}}}"
        config = workdir / "bench.yaml"
        write_config(config, ports, args.registers, args.interval_ms, sinks, workdir / "buffer.db")
        print(
            f"{args.devices} devices x {args.registers} holding registers every {args.interval_ms} ms; {os.cpu_count()} cores"
        )
        sub = Subscriber(mosquitto.port)
        health_port = free_port()
        gateway = start_gateway(config, health_port, workdir / "gateway.log")
        try:
            live_rate = live_phase(args, gateway, health_port, sub)
            if args.outage_s > 0:
                outage_phase(args, health_port, mosquitto, sub, live_rate)
            print(f"  gateway peak RSS so far {peak_rss_mb(gateway.pid):10.1f} MB")
        finally:
            stop(gateway)
            sub.close()
        if args.influx_seconds > 0:
            influx_phase(args, workdir, ports)
        if args.demo_seconds > 0:
            demo_phase(args, workdir, mosquitto)
    finally:
        mosquitto.kill()
        sim.kill()
        sim.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

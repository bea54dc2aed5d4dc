"""The MQTT sink over TLS with a client certificate and a password, against a private
Mosquitto with a TLS listener and a certificate authority made by the test."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge_config.schema import MqttSink as MqttSinkConfig
from edge_config.schema import MqttTls
from gateway.sample import Sample
from gateway.sinks.mqtt import MqttSink
from tests.integration.test_sink_mqtt import T0_NS, Subscriber, demo_site
from tests.servers import ServerProcess, free_port, require_program

USER, PASSWORD = "edge1", "s3cret-Passw0rd"


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    paths = {n: directory / f"{n}.pem" for n in ("ca", "server", "server_key", "client", "client_key")}
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_cert = _issue("edgefab test CA", ca_key, None, ca_key, ca=True)
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_cert = _issue("127.0.0.1", server_key, ca_cert.subject, ca_key, server=True)
    paths["server"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    client_cert = _issue("edge1", client_key, ca_cert.subject, ca_key)
    paths["client"].write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, paths["server_key"])
    _write_key(client_key, paths["client_key"])
    return paths


class TlsBroker(ServerProcess):
    pki: dict[str, Path]
    plain_port: int


@pytest.fixture
def tls_mosquitto(tmp_path: Path) -> Iterator[TlsBroker]:
    """Mosquitto with a TLS listener (client certificate and password required) and a local plain one."""
    exe = require_program("mosquitto", "mosquitto")
    passwd = require_program("mosquitto_passwd", "mosquitto")
    pki = make_pki(tmp_path)
    password_file = tmp_path / "passwords"
    subprocess.run([passwd, "-b", "-c", str(password_file), USER, PASSWORD], check=True, capture_output=True)
    port, plain_port = free_port(), free_port()
    conf = tmp_path / "mosquitto.conf"
    # as root, Mosquitto would switch to the 'mosquitto' user, who cannot read the test's private files
    run_as = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{run_as}per_listener_settings true\npersistence false\nmax_queued_messages 1000000\n"
        f"listener {port} 127.0.0.1\n"
        f"cafile {pki['ca']}\ncertfile {pki['server']}\nkeyfile {pki['server_key']}\n"
        f"require_certificate true\nallow_anonymous false\npassword_file {password_file}\n"
        f"listener {plain_port} 127.0.0.1\nallow_anonymous true\n"
    )
    server = TlsBroker([exe, "-c", str(conf)], port, tmp_path, "mosquitto-tls")
    server.pki, server.plain_port = pki, plain_port
    server.start()
    yield server
    server.stop()


async def first_error(sink: MqttSink, timeout_s: float = 5.0) -> str:
    """The sink's reason for not being connected, as soon as its first attempt failed."""
    for _ in range(int(timeout_s / 0.05)):
        if sink.last_error or sink.connected:
            break
        await asyncio.sleep(0.05)
    assert not sink.connected
    return sink.last_error


def tls_config(broker: TlsBroker, *, password: str = PASSWORD, with_client_cert: bool = True) -> MqttSinkConfig:
    pki = broker.pki
    tls = MqttTls(
        ca=str(pki["ca"]),
        cert=str(pki["client"]) if with_client_cert else None,
        key=str(pki["client_key"]) if with_client_cert else None,
    )
    return MqttSinkConfig(url=f"mqtts://127.0.0.1:{broker.port}", username=USER, password=password, tls=tls)


async def test_delivery_over_tls_with_client_certificate_and_password(tls_mosquitto):
    subscriber = Subscriber(tls_mosquitto.plain_port, ["acme/#"])
    sink = MqttSink(tls_config(tls_mosquitto), demo_site())
    await sink.start()
    try:
        assert await sink.wait_connected(10), sink.last_error
        await sink.deliver([Sample("acme/dongguan/stamping/line1/press01/temp", 64.5, T0_NS)])
        (message,) = await subscriber.until(1, "acme/dongguan/stamping/")
        assert json.loads(message.payload)["value"] == 64.5
        tls_socket = sink._connection._session.client.socket()
        assert isinstance(tls_socket, ssl.SSLSocket) and tls_socket.version() in {"TLSv1.2", "TLSv1.3"}
    finally:
        await sink.stop()
        subscriber.close()


async def test_a_wrong_password_is_reported_in_plain_words_and_nothing_is_delivered(tls_mosquitto):
    sink = MqttSink(tls_config(tls_mosquitto, password="wrong"), demo_site())
    await sink.start()
    try:
        error = await first_error(sink)
        assert "refused" in error and "not authorized" in error.lower()
    finally:
        await sink.stop()


async def test_without_a_client_certificate_the_broker_refuses_the_tls_handshake(tls_mosquitto):
    sink = MqttSink(tls_config(tls_mosquitto, with_client_cert=False), demo_site())
    await sink.start()
    try:
        assert await first_error(sink)  # the broker ends the handshake: "TLS error: ..." or a reset
    finally:
        await sink.stop()


async def test_a_broker_whose_certificate_another_ca_signed_is_refused(tls_mosquitto, tmp_path):
    other_dir = tmp_path / "other-ca"
    other_dir.mkdir()
    other_ca = make_pki(other_dir)["ca"]
    config = tls_config(tls_mosquitto).model_copy(
        update={"tls": tls_config(tls_mosquitto).tls.model_copy(update={"ca": str(other_ca)})}
    )
    sink = MqttSink(config, demo_site())
    await sink.start()
    try:
        error = await first_error(sink)
        assert "TLS error" in error and "CERTIFICATE_VERIFY_FAILED" in error
    finally:
        await sink.stop()


async def test_thousands_of_messages_over_tls_are_confirmed_and_arrive_in_order(tls_mosquitto):
    subscriber = Subscriber(tls_mosquitto.plain_port, ["acme/#"])
    sink = MqttSink(tls_config(tls_mosquitto), demo_site())  # uns-json: a message per sample
    batch = [Sample("acme/dongguan/stamping/line1/press01/temp", float(i), T0_NS + i) for i in range(3000)]
    await sink.start()
    try:
        assert await sink.wait_connected(10), sink.last_error
        confirmed_before = sink.counters.messages_confirmed  # the birth message
        await sink.deliver(batch)
        assert sink.counters.messages_confirmed - confirmed_before == 3000
        received = await subscriber.until(3000, "acme/dongguan/stamping/", timeout_s=30)
    finally:
        await sink.stop()
        subscriber.close()
    assert [json.loads(m.payload)["value"] for m in received] == [float(i) for i in range(3000)]


async def test_a_message_larger_than_the_socket_takes_waits_for_a_stalled_broker_and_then_arrives_whole(
    tls_mosquitto,
):
    """A 13 MB uns-batch message while the broker is frozen (SIGSTOP): the socket fills, the rest of
    the message waits for it to drain, without blocking the event loop; once the broker runs again
    the message is completed, confirmed and received whole."""
    assert tls_mosquitto.proc is not None
    subscriber = Subscriber(tls_mosquitto.plain_port, ["acme/#"])
    sink = MqttSink(tls_config(tls_mosquitto).model_copy(update={"format": "uns-batch"}), demo_site())
    batch = [Sample("acme/dongguan/stamping/line1/press01/temp", float(i), T0_NS + i) for i in range(300_000)]
    await sink.start()
    try:
        assert await sink.wait_connected(10), sink.last_error
        tls_mosquitto.proc.send_signal(signal.SIGSTOP)
        try:
            delivery = asyncio.create_task(sink.deliver(batch))
            ticks = 0
            for _ in range(20):  # the loop keeps running while the write waits
                await asyncio.sleep(0.025)
                ticks += 1
            assert ticks == 20 and not delivery.done()
            assert sink._connection._session.client.want_write(), "part of the message is still to be written"
        finally:
            tls_mosquitto.proc.send_signal(signal.SIGCONT)
        await asyncio.wait_for(delivery, 30)
        (message,) = await subscriber.until(1, "acme/dongguan/stamping/", timeout_s=30)
    finally:
        await sink.stop()
        subscriber.close()
    assert len(message.payload) > 12_000_000
    assert [entry["value"] for entry in json.loads(message.payload)["samples"]] == [float(i) for i in range(300_000)]

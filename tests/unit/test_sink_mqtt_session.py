"""What the event loop does when an MQTT connection's socket is readable (`_Session._readable`).

A TLS socket can hold bytes it has already decrypted: the event loop cannot see them (the
kernel's buffer is empty), so after paho's read the session reads again while `pending()`
says there is more. Mosquitto writes one packet per TLS record, so a real broker does not
produce that state on demand; the client and socket here are stand-ins that script it. The
TLS paths a real broker does produce are tested against one in
tests/integration/test_sink_mqtt_tls.py.
"""

from __future__ import annotations

import asyncio

from paho.mqtt.enums import MQTTErrorCode

from gateway.sinks.mqtt_connection import LOST_BY_NETWORK, _Session


class TlsSocketWithDecryptedBytes:
    def __init__(self, pending: list[int]) -> None:
        self._pending = pending

    def pending(self) -> int:
        return self._pending.pop(0) if self._pending else 0


class PlainSocket:
    """No `pending()`: a plain TCP socket's unread bytes stay in the kernel, where the loop sees them."""


class StandInClient:
    def __init__(self, sock: object, results: list[MQTTErrorCode]) -> None:
        self.sock, self.results, self.reads = sock, results, 0

    def loop_read(self) -> MQTTErrorCode:
        self.reads += 1
        return self.results.pop(0) if self.results else MQTTErrorCode.MQTT_ERR_SUCCESS

    def socket(self) -> object:
        return self.sock


def session_for(client: StandInClient) -> tuple[_Session, list[_Session]]:
    lost: list[_Session] = []
    return _Session(client, asyncio.get_running_loop(), lost.append), lost  # type: ignore[arg-type]


async def test_a_tls_socket_is_read_again_while_it_holds_decrypted_bytes() -> None:
    client = StandInClient(TlsSocketWithDecryptedBytes([180, 60, 0]), [])
    session, lost = session_for(client)
    session._readable()
    assert client.reads == 3 and not lost


async def test_a_plain_socket_is_read_once_per_readable_event() -> None:
    client = StandInClient(PlainSocket(), [])
    session, lost = session_for(client)
    session._readable()
    assert client.reads == 1 and not lost


async def test_a_failed_read_marks_the_connection_lost_and_stops_reading() -> None:
    client = StandInClient(TlsSocketWithDecryptedBytes([99, 99]), [MQTTErrorCode.MQTT_ERR_CONN_LOST])
    session, lost = session_for(client)
    session._readable()
    assert client.reads == 1
    assert lost == [session] and session.lost.is_set() and session.disconnect_reason == LOST_BY_NETWORK

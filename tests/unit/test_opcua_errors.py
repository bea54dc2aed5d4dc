"""Every failure talking to an OPC UA server is one line that says what to fix."""

from __future__ import annotations

import socket

import pytest
from asyncua import ua

from connectors.opcua.errors import describe_error, is_authentication_failure

URL = "opc.tcp://192.168.1.40:4840"


@pytest.mark.parametrize(
    ("error", "username", "expected"),
    [
        (
            ConnectionRefusedError(111, "Connection refused"),
            None,
            f"cannot connect to {URL}: connection refused (is the server running, is the port right?)",
        ),
        (socket.gaierror(-2, "Name or service not known"), None, f"cannot connect to {URL}: unknown host name"),
        (TimeoutError(), None, f"no answer from {URL} within 4 s"),
        (OSError(113, "No route to host"), None, f"cannot connect to {URL}: No route to host"),
        (ConnectionError("transport lost"), None, f"connection to {URL} lost (transport lost)"),
        (
            ua.UaStatusCodeError(ua.StatusCodes.BadUserAccessDenied),
            "operator",
            f"authentication failed: {URL} rejected user 'operator': wrong user name or password (BadUserAccessDenied)",
        ),
        (
            ua.UaStatusCodeError(ua.StatusCodes.BadUserAccessDenied),
            None,
            f"authentication failed: {URL} refuses anonymous access: configure username and password (BadUserAccessDenied)",
        ),
        (
            ua.UaStatusCodeError(ua.StatusCodes.BadIdentityTokenRejected),
            None,
            f"authentication failed: {URL} does not accept anonymous access (BadIdentityTokenRejected)",
        ),
        (
            ua.UaStatusCodeError(ua.StatusCodes.BadCertificateUntrusted),
            None,
            f"{URL} rejected the client certificate (BadCertificateUntrusted): trust it on the server "
            "(see `edgefab opcua cert`) and check its ApplicationURI",
        ),
        (
            ua.UaError("No matching endpoints: 3, http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"),
            None,
            f"{URL} offers no endpoint with the configured security "
            "(No matching endpoints: 3, http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256)",
        ),
    ],
)
def test_failures_read_as_one_actionable_line(error: BaseException, username: str | None, expected: str) -> None:
    message = describe_error(error, URL, username=username)
    assert message == expected
    assert "\n" not in message


def test_only_identity_rejections_count_as_authentication_failures() -> None:
    assert is_authentication_failure(ua.UaStatusCodeError(ua.StatusCodes.BadUserAccessDenied))
    assert not is_authentication_failure(ua.UaStatusCodeError(ua.StatusCodes.BadCertificateUntrusted))
    assert not is_authentication_failure(ConnectionRefusedError())


def test_asyncuas_traceback_for_a_publish_cut_by_a_lost_connection_is_not_logged() -> None:
    """The connector reports the loss itself in one line; asyncua's ERROR traceback would read like a bug."""
    import logging

    import connectors.opcua.client  # noqa: F401  # installs the filter

    session_log = logging.getLogger("asyncua.client.ua_session.UaSession")

    def record(message: str, error: BaseException) -> logging.LogRecord:
        return session_log.makeRecord(
            session_log.name, logging.ERROR, __file__, 1, message, (), (type(error), error, None)
        )

    assert not session_log.filter(record("Publish iteration crashed; retrying in 1s", ConnectionError("closed")))
    assert session_log.filter(record("Publish iteration crashed; retrying in 1s", KeyError("a real bug")))
    assert session_log.filter(record("something else", ConnectionError("closed")))

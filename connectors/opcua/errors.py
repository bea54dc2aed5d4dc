"""What went wrong talking to an OPC UA server, said in one line an integrator can act on.

Used for `ConnectorHealth.last_error`, the log, and the `edgefab opcua` commands, so the same
failure reads the same everywhere and never as a Python traceback.
"""

from __future__ import annotations

import asyncio
import errno
import socket

from asyncua import ua

from connectors.opcua.certificate import CertificateError
from connectors.opcua.quality import status_name

AUTHENTICATION_CODES = {"BadUserAccessDenied", "BadIdentityTokenInvalid", "BadIdentityTokenRejected"}
CERTIFICATE_CODES = {
    "BadSecurityChecksFailed",
    "BadCertificateInvalid",
    "BadCertificateUntrusted",
    "BadCertificateUriInvalid",
    "BadCertificateTimeInvalid",
    "BadCertificateRevoked",
    "BadCertificateUseNotAllowed",
    "BadCertificateHostNameInvalid",
    "BadSecurityPolicyRejected",
}


class OpcUaError(Exception):
    """A failure already described for people; str() is the one-line message."""


def describe_error(error: BaseException, url: str, *, username: str | None = None, timeout_s: float = 4.0) -> str:
    """One line that says what failed and what to check, for any exception a connect/read can raise."""
    if isinstance(error, OpcUaError | CertificateError):
        return str(error)
    if isinstance(error, ua.UaStatusCodeError):
        return _describe_status(int(error.code), url, username)
    if isinstance(error, ConnectionRefusedError):
        return f"cannot connect to {url}: connection refused (is the server running, is the port right?)"
    if isinstance(error, socket.gaierror):
        return f"cannot connect to {url}: unknown host name"
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return f"no answer from {url} within {timeout_s:g} s"
    if isinstance(error, ConnectionError):
        return f"connection to {url} lost ({error})" if str(error) else f"connection to {url} lost"
    if isinstance(error, OSError):
        reason = error.strerror or errno.errorcode.get(error.errno or 0, "") or str(error)
        return f"cannot connect to {url}: {reason}"
    if isinstance(error, ua.UaError) and str(error).startswith("No matching endpoints"):
        return f"{url} offers no endpoint with the configured security ({error})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def is_authentication_failure(error: BaseException) -> bool:
    return isinstance(error, ua.UaStatusCodeError) and status_name(int(error.code)) in AUTHENTICATION_CODES


def _describe_status(code: int, url: str, username: str | None) -> str:
    name = status_name(code)
    if name in AUTHENTICATION_CODES:
        if name == "BadIdentityTokenRejected":
            kind = f"user name login as {username!r}" if username else "anonymous access"
            return f"authentication failed: {url} does not accept {kind} ({name})"
        if username:
            return f"authentication failed: {url} rejected user {username!r}: wrong user name or password ({name})"
        return f"authentication failed: {url} refuses anonymous access: configure username and password ({name})"
    if name in CERTIFICATE_CODES:
        return (
            f"{url} rejected the client certificate ({name}): trust it on the server "
            "(see `edgefab opcua cert`) and check its ApplicationURI"
        )
    if name in {"BadNodeIdUnknown", "BadNodeIdInvalid"}:
        return f"node does not exist on {url} ({name})"
    if name in {"BadTimeout", "BadRequestTimeout"}:
        return f"{url} did not answer in time ({name})"
    _name, doc = ua.status_codes.get_name_and_doc(code)
    return f"{url} answered {name}: {doc.rstrip('.')}" if doc else f"{url} answered {name}"

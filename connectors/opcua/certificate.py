"""One persistent OPC UA application certificate per application, created once and then reused.

OPC UA servers trust a client by its certificate, so the certificate must stay the same across
restarts (an operator accepts it once in the PLC's trust list). Its subjectAltName must carry
the application's ApplicationURI, which the client also announces when it connects: a mismatch
is the most common reason a server rejects a secure connection.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTIFICATE_FILE = "cert.der"
PRIVATE_KEY_FILE = "key.pem"
VALIDITY_DAYS = 3650
"""Ten years: a gateway on a Pi must not stop collecting because a certificate silently expired."""


class CertificateError(Exception):
    """A certificate or key file that exists but cannot be used (one-line message for the user)."""


@dataclass(frozen=True)
class ApplicationCertificate:
    certificate_path: Path
    private_key_path: Path
    application_uri: str
    created: bool
    """True when this call generated the files, False when existing ones were reused."""


def default_client_uri(hostname: str | None = None) -> str:
    return f"urn:{hostname or socket.gethostname()}:edgefab:gateway"


def application_uri_of(certificate_path: Path) -> str | None:
    """The URI in the certificate's subjectAltName, which the application must announce as its ApplicationURI."""
    certificate = load_certificate(certificate_path)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def load_certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CertificateError(f"cannot read certificate {path}: {error.strerror}") from None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CertificateError(f"{path} is not a DER or PEM certificate") from None


def ensure_application_certificate(
    directory: Path,
    application_uri: str,
    *,
    hostnames: tuple[str, ...] = (),
    common_name: str = "edgefab",
    server: bool = False,
) -> ApplicationCertificate:
    """Reuse the certificate in `directory` if it is valid for `application_uri`, otherwise create one.

    An existing certificate for a different URI is an error, not silently replaced: servers
    already trust that certificate, and replacing it would break them without warning.
    """
    directory.mkdir(parents=True, exist_ok=True)
    certificate_path = directory / CERTIFICATE_FILE
    private_key_path = directory / PRIVATE_KEY_FILE
    if certificate_path.is_file() and private_key_path.is_file():
        existing_uri = application_uri_of(certificate_path)
        if existing_uri != application_uri:
            raise CertificateError(
                f"{certificate_path} already holds a certificate for {existing_uri!r}, not {application_uri!r}: "
                "use that URI, or another --dir"
            )
        expires = load_certificate(certificate_path).not_valid_after_utc
        if expires > datetime.datetime.now(datetime.UTC):
            return ApplicationCertificate(certificate_path, private_key_path, application_uri, created=False)

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = _self_signed(key, application_uri, hostnames or (socket.gethostname(),), common_name, server)
    private_key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    private_key_path.chmod(0o600)
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    return ApplicationCertificate(certificate_path, private_key_path, application_uri, created=True)


def _self_signed(
    key: rsa.RSAPrivateKey, application_uri: str, hostnames: tuple[str, ...], common_name: str, server: bool
) -> x509.Certificate:
    """A self-signed application instance certificate as OPC 10000-6 6.2.2 describes it."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in dict.fromkeys(hostnames):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if server else []
    usages = usages or [ExtendedKeyUsageOID.CLIENT_AUTH]
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(key, hashes.SHA256())
    )

"""The gateway's OPC UA certificate is created once, carries its ApplicationURI, and is never silently replaced."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from connectors.opcua.certificate import CertificateError, application_uri_of, ensure_application_certificate

URI = "urn:pi4:edgefab:gateway"


def test_a_new_certificate_names_the_application_uri_and_host_in_its_subject_alt_name(tmp_path: Path) -> None:
    made = ensure_application_certificate(tmp_path, URI, hostnames=("pi4", "127.0.0.1"))

    certificate = x509.load_der_x509_certificate(made.certificate_path.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert made.created
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [URI]
    assert san.get_values_for_type(x509.DNSName) == ["pi4"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert oct(made.private_key_path.stat().st_mode & 0o777) == "0o600"
    assert application_uri_of(made.certificate_path) == URI


def test_a_second_call_reuses_the_same_files(tmp_path: Path) -> None:
    first = ensure_application_certificate(tmp_path, URI)
    der = first.certificate_path.read_bytes()
    second = ensure_application_certificate(tmp_path, URI)

    assert not second.created
    assert second.certificate_path.read_bytes() == der


def test_asking_for_another_uri_in_the_same_directory_is_refused(tmp_path: Path) -> None:
    ensure_application_certificate(tmp_path, URI)
    with pytest.raises(CertificateError, match="already holds a certificate for 'urn:pi4:edgefab:gateway'"):
        ensure_application_certificate(tmp_path, "urn:other")


def test_an_unreadable_certificate_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "cert.der").write_bytes(b"not a certificate")
    (tmp_path / "key.pem").write_bytes(b"")
    with pytest.raises(CertificateError, match="is not a DER or PEM certificate"):
        ensure_application_certificate(tmp_path, URI)

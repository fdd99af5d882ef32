"""Security (README "Security"), headers, URLs, TLS and download limits, over real loopback sockets.

The emulator covers the normal paths; a tiny local server (a few lines of ``http.server``) covers
what a well-behaved export never does: redirect loops, redirects to plain http, bodies without a
Content-Length, a TLS certificate from a private CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from repo361_ingest.api import ExportApi
from repo361_ingest.auth import Credentials, TokenProvider
from repo361_ingest.download import MAX_REDIRECTS, DownloadSettings, download_all
from repo361_ingest.emulator import Emulator
from repo361_ingest.errors import ConfigError, UnsafeInputError
from repo361_ingest.http import HttpSettings, build_session, check_url_allowed, read_limited

FAST = HttpSettings(connect_timeout_s=2, read_timeout_s=5, retries=0)
SIG = "s3cr3t-signature-0123"


# ---- a tiny real server ----------------------------------------------------------------------


class Tiny:
    """A loopback server: path -> handler(h); records (path, headers) of every request."""

    def __init__(self, routes: dict[str, Callable[[BaseHTTPRequestHandler], None]], tls: ssl.SSLContext | None = None):
        self.seen: list[tuple[str, dict[str, str]]] = []
        tiny = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # noqa: ANN002 - quiet
                pass

            def do_GET(self):  # noqa: N802
                tiny.seen.append((self.path, dict(self.headers.items())))
                routes[self.path.split("?")[0]](self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tiny() -> Iterator[Callable[..., Tiny]]:
    servers: list[Tiny] = []

    def make(routes, tls=None) -> Tiny:
        servers.append(Tiny(routes, tls))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def redirect(location: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handle


def body(data: bytes, chunked: bool = False) -> Callable[[BaseHTTPRequestHandler], None]:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        if chunked:  # no Content-Length: the size is only known by counting
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            for i in range(0, len(data), 65536):
                part = data[i : i + 65536]
                try:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                except OSError:
                    return  # the client hung up, as it should
            h.wfile.write(b"0\r\n\r\n")
        else:
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)

    return handle


def entry(url: str, tmp_path: Path, name: str = "conv_001") -> dict:
    return {"page_seq": 1, "file_index": 0, "name": name, "url": url,
            "path": str(tmp_path / "batch" / "000000001-00000.avro")}


def download(url: str, tmp_path: Path, max_bytes: int = 10**9, http: HttpSettings = FAST) -> dict:
    [row] = download_all([entry(url, tmp_path)], DownloadSettings(http=http, max_bytes=max_bytes, attempts=1))
    return row


# ---- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://storage.example.com/f?sig=x", "http://127.0.0.1:8080/f", "http://127.9.9.9/f",
    "http://localhost/f", "http://[::1]:9/f",
])
def test_https_or_loopback_http_is_allowed(url):
    check_url_allowed(url, "download URL")


@pytest.mark.parametrize("url", [
    f"http://example.invalid/x?sig={SIG}", f"http://10.0.0.1/x?sig={SIG}", f"ftp://127.0.0.1/x?sig={SIG}",
    f"file:///etc/passwd?sig={SIG}", f"http://127.0.0.1.example.com/x?sig={SIG}", f"https:///x?sig={SIG}",
    f"javascript:alert(1)?sig={SIG}",
])
def test_other_urls_are_refused_without_their_signature(url):
    with pytest.raises(UnsafeInputError, match="download URL must be https") as info:
        check_url_allowed(url, "download URL")
    assert SIG not in str(info.value)


def test_redirect_to_plain_http_elsewhere_is_refused_before_connecting(tiny, tmp_path):
    server = tiny({"/f": redirect(f"http://example.invalid/x?sig={SIG}")})
    row = download(f"{server.base}/f?sig={SIG}", tmp_path)
    assert row["status"] == "failed"
    assert row["error"] == "redirect target must be https (or http to a loopback address), got http://example.invalid/x"
    assert not (tmp_path / "batch" / "000000001-00000.avro").exists()


def test_redirects_are_bounded(tiny, tmp_path):
    server = tiny({"/loop": redirect("/loop")})
    row = download(f"{server.base}/loop?sig={SIG}", tmp_path)
    assert (row["status"], row["error"]) == ("failed", f"TooManyRedirects while fetching {server.base}/loop")
    assert len(server.seen) == MAX_REDIRECTS + 1


# ---- headers ----------------------------------------------------------------------------------


def test_authorization_is_dropped_on_any_redirect_even_to_the_same_host(tiny):
    server = tiny({"/a": redirect("/b"), "/b": body(b"ok")})
    session = build_session(FAST)
    assert session.get(f"{server.base}/a", headers={"Authorization": "Bearer t0ken"}).text == "ok"
    assert [(p, "Authorization" in h) for p, h in server.seen] == [("/a", True), ("/b", False)]


def test_netrc_credentials_are_never_sent(tmp_path, monkeypatch):
    """requests attaches ~/.netrc credentials to any listed host unless told not to."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with Emulator(conversations=2, pages=1, files_per_page=1, records_per_file=2, seed=3, storage_redirect=True) as emu:
        http = HttpSettings(retries=0)
        session = build_session(http)
        tokens = TokenProvider(emu.token_url, Credentials(emu.client_id, emu.client_secret), session, http)
        page = ExportApi(emu.api_base_url, tokens, session, http).fetch_page(None, 1)
        row = download(page.files[0].url, tmp_path, http=http)
        assert row["status"] == "ok"
        auth = [(r.server, r.method, r.path.split("/")[1], r.headers.get("Authorization", "")[:7]) for r in emu.request_log]
        assert auth == [
            ("api", "POST", "security", ""),
            ("api", "POST", "rawdata", "Bearer "),
            ("api", "GET", "files", ""),  # the 302 to the storage port
            ("storage", "GET", "files", ""),
        ]


# ---- TLS --------------------------------------------------------------------------------------


def _private_ca(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA and a server certificate for 127.0.0.1, made now: (CA bundle path, server context)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def cert(subject, issuer, key, sign_key, ca: bool):
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                              key_encipherment=False, data_encipherment=False, key_agreement=False,
                              encipher_only=False, decipher_only=False), critical=True)
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(sign_key.public_key()), critical=False)
        return builder.sign(sign_key, hashes.SHA256())

    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "repo361 test CA")])
    ca_cert = cert(ca_name, ca_name, ca_key, ca_key, ca=True)
    srv_cert = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name, srv_key, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    bundle, chain, key = tmp_path / "ca.pem", tmp_path / "srv.pem", tmp_path / "srv.key"
    bundle.write_bytes(ca_cert.public_bytes(pem))
    chain.write_bytes(srv_cert.public_bytes(pem))
    key.write_bytes(srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key)
    return bundle, context


def test_tls_is_verified_and_a_private_ca_can_be_added(tiny, tmp_path, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    bundle, context = _private_ca(tmp_path)
    server = tiny({"/f": body(b"tls-ok")}, tls=context)
    url = f"{server.base}/f?sig={SIG}"

    # Default trust store: the private CA is unknown, the download fails without its signature.
    row = download(url, tmp_path)
    assert (row["status"], row["error"]) == ("failed", f"SSLError while fetching {server.base}/f")

    # The config key ...
    assert build_session(HttpSettings(ca_bundle=str(bundle), retries=0)).get(url, timeout=5).text == "tls-ok"
    # ... or the environment variable requests itself documents, read where the session is built.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert HttpSettings().verify == str(bundle)
    assert build_session(HttpSettings(retries=0)).get(url, timeout=5).text == "tls-ok"
    # The config key wins over the environment; nothing turns verification off.
    other = tmp_path / "other.pem"
    other.write_text(Path(requests.certs.where()).read_text())
    with pytest.raises(requests.exceptions.SSLError):
        build_session(HttpSettings(ca_bundle=str(other), retries=0)).get(url, timeout=5)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    with pytest.raises(requests.exceptions.SSLError):
        build_session(HttpSettings(retries=0)).get(url, timeout=5)


def test_missing_ca_bundle_fails_at_start_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="config key 'ca_bundle' names .*nope.pem.*not a file"):
        build_session(HttpSettings(ca_bundle=str(tmp_path / "nope.pem")))


# ---- download limits --------------------------------------------------------------------------


def test_download_over_max_bytes_with_content_length_is_refused_before_reading(tmp_path):
    with Emulator(conversations=4, pages=1, files_per_page=1, records_per_file=4, seed=9) as emu:
        size = emu.file_path(emu.files()[0].name).stat().st_size
        session = build_session(FAST)
        token = session.post(emu.token_url, data={"client_id": emu.client_id, "client_secret": emu.client_secret,
                                                  "grant_type": "client_credentials"}).json()["access_token"]
        url = session.post(emu.api_base_url + "/rawdata/export/page", json={"continuationToken": None, "format": "avro"},
                           headers={"Authorization": f"Bearer {token}"}).json()["files"][0]["url"]
        row = download(url, tmp_path, max_bytes=size - 1)
    assert (row["status"], row["error"]) == ("failed", f"Content-Length {size} exceeds max_download_bytes={size - 1}")
    assert list((tmp_path / "batch").iterdir()) == []


def test_download_over_max_bytes_without_content_length_stops_counting(tiny, tmp_path):
    server = tiny({"/big": body(b"\0" * (4 * 1024 * 1024), chunked=True)})
    row = download(f"{server.base}/big?sig={SIG}", tmp_path, max_bytes=100_000)
    assert (row["status"], row["error"]) == ("failed", "download exceeds max_download_bytes=100000")
    assert list((tmp_path / "batch").iterdir()) == []  # no .part file left behind


def test_read_limited_bounds_a_body_without_content_length(tiny):
    server = tiny({"/big": body(b"x" * (4 * 1024 * 1024), chunked=True), "/small": body(b"y" * 10, chunked=True)})
    session = build_session(FAST)
    with pytest.raises(UnsafeInputError, match="^page 3: page body exceeds the bound of 65536 bytes$"):
        read_limited(session.get(f"{server.base}/big", stream=True), 65536, "page 3: page body")
    assert read_limited(session.get(f"{server.base}/small", stream=True), 10, "page 3: page body") == b"y" * 10

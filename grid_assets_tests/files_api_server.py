"""A Databricks Files API on 127.0.0.1, over real HTTP or HTTPS, for `databricks-sdk`'s FilesAPI.

It implements the endpoints the SDK calls: upload (PUT /api/2.0/fs/files<path>?overwrite=...),
download and metadata (GET and HEAD on the same), delete (DELETE), and on
/api/2.0/fs/directories<path> list (GET), metadata (HEAD) and delete (DELETE). Every request is
recorded with its headers and body. Two knobs make it refuse like a workspace would: `volumes`
(paths outside these volumes answer 404 RESOURCE_DOES_NOT_EXIST) and `denied` (HTTP methods
answered 403 PERMISSION_DENIED, as for a principal without READ VOLUME or WRITE VOLUME).

`serving(..., certificate)` speaks TLS with a self-signed certificate for 127.0.0.1, so a client
that only talks `https://` (the pipeline and the check script) reaches it unchanged once its CA
bundle is the certificate (`REQUESTS_CA_BUNDLE`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

FILES = "/api/2.0/fs/files"
DIRECTORIES = "/api/2.0/fs/directories"


def volume_of(path: str) -> str:
    """`/Volumes/<catalog>/<schema>/<volume>` of a path inside a volume."""
    return "/".join(path.split("/")[:5])


@dataclass
class FilesServer:
    """What the fake workspace received: every request, and the files it holds now."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    volumes: set[str] | None = None  # None: every volume exists
    denied: set[str] = field(default_factory=set)  # methods answered 403
    port: int = 0
    scheme: str = "http"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"

    def calls(self, method: str) -> list[str]:
        return [unquote(urlsplit(r["path"]).path) for r in self.requests if r["method"] == method]

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _record(self, body: bytes = b"") -> tuple[str, str, dict]:
                parts = urlsplit(self.path)
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": body,
                    }
                )
                for prefix, kind in ((FILES, "file"), (DIRECTORIES, "directory")):
                    if parts.path.startswith(prefix + "/"):
                        return kind, unquote(parts.path[len(prefix) :]), parse_qs(parts.query)
                return "other", parts.path, {}

            def _reply(
                self,
                status: int,
                payload: dict | None = None,
                body: bytes | None = None,
                content_type: str = "application/json",
            ) -> None:
                if body is None:
                    body = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Last-Modified", formatdate(usegmt=True))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _not_found(self, path: str) -> None:
                self._reply(404, {"error_code": "NOT_FOUND", "message": f"{path} not found"})

            def _refused(self, kind: str, path: str) -> bool:
                """Answer as the workspace would for a missing volume or a missing grant."""
                if kind == "other":
                    self._not_found(path)
                    return True
                volume = volume_of(path)
                if server.volumes is not None and volume not in server.volumes:
                    dotted = ".".join(volume.split("/")[2:])
                    self._reply(
                        404,
                        {
                            "error_code": "RESOURCE_DOES_NOT_EXIST",
                            "message": f"Volume '{dotted}' does not exist.",
                        },
                    )
                    return True
                if self.command in server.denied:
                    privilege = "WRITE" if self.command in ("PUT", "DELETE") else "READ"
                    self._reply(
                        403,
                        {
                            "error_code": "PERMISSION_DENIED",
                            "message": f"User does not have {privilege} VOLUME on Volume "
                            f"'{'.'.join(volume.split('/')[2:])}'.",
                        },
                    )
                    return True
                return False

            def _children(self, path: str) -> list[str]:
                prefix = path.rstrip("/") + "/"
                return sorted(
                    {p[len(prefix) :].split("/")[0] for p in server.files if p.startswith(prefix)}
                )

            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind, path, query = self._record(body)
                if self._refused(kind, path):
                    return
                if kind != "file":
                    return self._not_found(path)
                if path in server.files and query.get("overwrite") != ["true"]:
                    return self._reply(409, {"error_code": "ALREADY_EXISTS", "message": path})
                server.files[path] = body
                self._reply(204)

            def do_GET(self) -> None:
                kind, path, _ = self._record()
                if self._refused(kind, path):
                    return
                if kind == "file":
                    if path not in server.files:
                        return self._not_found(path)
                    return self._reply(
                        200, body=server.files[path], content_type="application/octet-stream"
                    )
                names = self._children(path)
                if not names:
                    return self._not_found(path)
                prefix = path.rstrip("/") + "/"
                contents = [
                    {"path": prefix + n, "name": n, "is_directory": prefix + n not in server.files}
                    | (
                        {"file_size": len(server.files[prefix + n])}
                        if prefix + n in server.files
                        else {}
                    )
                    for n in names
                ]
                self._reply(200, {"contents": contents})

            def do_HEAD(self) -> None:
                kind, path, _ = self._record()
                if self._refused(kind, path):
                    return
                if kind == "file":
                    found = server.files.get(path)
                    if found is None:
                        return self._reply(404)
                    return self._reply(200, body=found, content_type="application/octet-stream")
                # A volume's root always exists; a folder below it exists while it holds files.
                exists = path.rstrip("/") == volume_of(path) or bool(self._children(path))
                self._reply(200 if exists else 404)

            def do_DELETE(self) -> None:
                kind, path, _ = self._record()
                if self._refused(kind, path):
                    return
                if kind == "file":
                    if path not in server.files:
                        return self._not_found(path)
                    del server.files[path]
                self._reply(200, {})

        return Handler


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""

    cert: Path
    key: Path


def self_signed_certificate(folder: Path) -> Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    loopback = ipaddress.ip_address("127.0.0.1")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(loopback)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = Certificate(folder / "files-api.crt", folder / "files-api.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that gives up (a refused certificate, a TCP probe) is expected here; any
        # other error in a handler is a bug of the fake and printed.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


@contextmanager
def serving(
    state: FilesServer | None = None, certificate: Certificate | None = None
) -> Iterator[FilesServer]:
    """`state` answered on a free 127.0.0.1 port (HTTPS with `certificate`) until the block ends."""
    state = state if state is not None else FilesServer()
    httpd = _Server(("127.0.0.1", 0), state.handler())
    if certificate is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert, certificate.key)
        # The handshake happens in the handler's thread: a client that connects and says
        # nothing (a TCP probe) does not hold up the server.
        httpd.socket = context.wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        state.scheme = "https"
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()

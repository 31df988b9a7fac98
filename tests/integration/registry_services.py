"""Real services for the registry-credential tests, all on 127.0.0.1 and stopped by the tests:

- `TokenIssuer` + `token_registry()`: a CNCF Distribution registry (the Debian `docker-registry`)
  configured for token auth (`auth: token:` with realm, service, issuer, rootcertbundle), and the
  small token service the tests run: Distribution's token protocol, RS256 JWTs with an `x5c`
  certificate chain the registry verifies against the bundle. Accounts grant some actions only.
- `GoogleStandIn`: an OAuth2 token endpoint (JWT-bearer grant, the assertion's signature checked
  with the service account's public key), a GCE metadata server (workload identity) and the
  Artifact Registry REST shapes (`GET /v1/projects/*/locations/*/repositories/*`).
- `moto_server()`: moto's server (ECR, STS) as a subprocess.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SERVICE = "farm-token-registry"
ISSUER = "farm-test-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 whose GET/POST go to `handle(method, path, query, headers, body)`."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                status, headers, payload = owner.handle(self.command, url.path, parse_qs(url.query),
                                                        dict(self.headers.items()), body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any  # noqa: N815

            def log_message(self, fmt: str, *args: Any) -> None:
                owner.log.append(fmt % args)

        self.log: list[str] = []
        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError


def _json(status: int, data: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


@dataclass
class Account:
    check: Callable[[str], bool]          # is this password right?
    actions: frozenset[str] = frozenset({"pull", "push"})


@dataclass
class TokenIssuer(_Server):
    """Distribution's token protocol with signed JWTs. `accounts`: user -> Account."""

    accounts: dict[str, Account] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)   # identity token -> user
    expires_in: int = 300
    skew_next: int = 0                   # the next N tokens are already expired for the registry
    issued: list[tuple[str, str]] = field(default_factory=list)    # (user, scope)
    tokens: list[str] = field(default_factory=list)                # every token handed out (secrets too)

    def __post_init__(self) -> None:
        super().__init__()
        self.key = rsa_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def bundle(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        if path != "/token":
            return _json(404, {})
        user = ""
        if method == "POST":                     # OAuth2 refresh-token grant (docker's identity tokens)
            form = parse_qs(body.decode())
            query = {**query, **form}
            user = self.refresh_tokens.get(form.get("refresh_token", [""])[0], "")
            if not user:
                return _json(401, {"error": "invalid_grant"})
        else:
            auth = headers.get("Authorization", "")
            if auth.startswith("Basic "):
                name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                account = self.accounts.get(name)
                if account is None or not account.check(password):
                    return _json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                user = name
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = self.accounts[user].actions if user else frozenset()
            granted = sorted(set(actions.split(",")) & allowed)
            access.append({"type": kind, "name": name, "actions": granted})
            self.issued.append((user, scope))
        now = int(time.time())
        exp = now + self.expires_in
        if self.skew_next > 0:
            self.skew_next -= 1
            exp = now - 600                      # the registry's clock says it is long expired
        claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": exp, "nbf": now - 60, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        der = self.cert.public_bytes(serialization.Encoding.DER)
        token = jwt.encode(claims, private_pem(self.key), algorithm="RS256",
                           headers={"x5c": [base64.b64encode(der).decode()]})
        self.tokens.append(token)
        out: dict[str, Any] = {"token": token, "access_token": token, "expires_in": self.expires_in,
                               "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        return _json(200, out)


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, ok: Callable[[int], bool]) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if ok(httpx.get(url, timeout=1, trust_env=False).status_code):
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within 30 s: {log.read_text()[-2000:]}")
        time.sleep(0.1)


@contextmanager
def token_registry(workdir: Path, issuer: TokenIssuer) -> Iterator[str]:
    """A Distribution registry on 127.0.0.1 that trusts `issuer`'s tokens; yields its host:port."""
    workdir.mkdir(parents=True, exist_ok=True)
    bundle = workdir / "root.pem"
    bundle.write_bytes(issuer.bundle())
    port = free_port()
    conf = workdir / "config.yml"
    conf.write_text("\n".join([
        "version: 0.1",
        "log:", "  level: info", "  formatter: text",
        "storage:", "  filesystem:", f"    rootdirectory: {json.dumps(str(workdir / 'data'))}",
        "  delete:", "    enabled: true",
        "http:", f"  addr: 127.0.0.1:{port}", f"  secret: {secrets.token_hex(16)}",
        "auth:", "  token:", f"    realm: {issuer.url}/token", f"    service: {SERVICE}",
        f"    issuer: {ISSUER}", f"    rootcertbundle: {json.dumps(str(bundle))}", ""]))
    log = workdir / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    process = Process(proc, log)
    try:
        _wait_http(f"http://127.0.0.1:{port}/v2/", proc, log, lambda s: s == 401)
        yield f"127.0.0.1:{port}"
    finally:
        process.stop()


@contextmanager
def moto_server(workdir: Path) -> Iterator[str]:
    """moto's server (every AWS API it mocks, ECR and STS among them) on 127.0.0.1; yields its URL."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "moto.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    process = Process(proc, log)
    try:
        _wait_http(f"http://127.0.0.1:{port}/moto-api/", proc, log, lambda s: s < 500)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@dataclass
class GoogleStandIn(_Server):
    """OAuth2 token endpoint + GCE metadata server + Artifact Registry REST, sharing one set of tokens."""

    project: str = "farm-test"
    sa_email: str = "builder@farm-test.iam.gserviceaccount.com"
    repositories: dict[str, str] = field(default_factory=dict)   # projects/p/locations/l/repositories/r -> FORMAT
    access_tokens: set[str] = field(default_factory=set)
    minted: list[str] = field(default_factory=list)               # "token-endpoint" | "metadata"

    def __post_init__(self) -> None:
        super().__init__()
        self.key = rsa_key()

    def service_account_key(self) -> dict[str, str]:
        """A service-account JSON key as Google issues it, whose token_uri is this server."""
        return {"type": "service_account", "project_id": self.project, "private_key_id": uuid.uuid4().hex,
                "private_key": private_pem(self.key).decode(), "client_email": self.sa_email,
                "client_id": "1234567890", "token_uri": f"{self.url}/token",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth"}

    def _authorized(self, bearer: str) -> bool:
        """An access token minted here, or a self-signed JWT of the service account (what Google's
        client libraries send for a service-account key)."""
        if bearer in self.access_tokens:
            return True
        try:
            jwt.decode(bearer, self.key.public_key(), algorithms=["RS256"], issuer=self.sa_email,
                       options={"verify_aud": False})
        except jwt.PyJWTError:
            return False
        self.minted.append("self-signed-jwt")
        return True

    def _mint(self, how: str) -> tuple[int, dict[str, str], bytes]:
        token = "ya29." + secrets.token_urlsafe(32)
        self.access_tokens.add(token)
        self.minted.append(how)
        return _json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        lower = {k.lower(): v for k, v in headers.items()}
        if path == "/token" and method == "POST":
            form = parse_qs(body.decode())
            try:
                jwt.decode(form["assertion"][0], self.key.public_key(), algorithms=["RS256"],
                           audience=[f"{self.url}/token", "https://oauth2.googleapis.com/token"],
                           issuer=self.sa_email)
            except (KeyError, jwt.PyJWTError) as exc:
                return _json(400, {"error": "invalid_grant", "error_description": type(exc).__name__})
            return self._mint("token-endpoint")
        if path == "/" or path.startswith("/computeMetadata/"):
            if lower.get("metadata-flavor") != "Google":
                return 403, {}, b""
            flavor = {"Metadata-Flavor": "Google"}
            if path in ("/", "/computeMetadata/v1/", "/computeMetadata/v1"):
                return 200, flavor, b""
            if path == "/computeMetadata/v1/project/project-id":
                return 200, {**flavor, "Content-Type": "text/plain"}, self.project.encode()
            if path.startswith("/computeMetadata/v1/instance/service-accounts/"):
                rest = path[len("/computeMetadata/v1/instance/service-accounts/"):].strip("/")
                account, _, leaf = rest.partition("/")
                if account not in ("default", self.sa_email):
                    return 404, flavor, b""
                if leaf == "token":
                    status, hdrs, payload = self._mint("metadata")
                    return status, {**hdrs, **flavor}, payload
                if leaf == "email":
                    return 200, {**flavor, "Content-Type": "text/plain"}, self.sa_email.encode()
                if leaf == "":
                    info = {"email": self.sa_email, "aliases": ["default"],
                            "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
                    return 200, {**flavor, "Content-Type": "application/json"}, json.dumps(info).encode()
            return 404, flavor, b""
        if path.startswith("/v1/projects/"):
            if not self._authorized(lower.get("authorization", "")[7:]):
                return _json(401, {"error": {"code": 401, "message": "Request had invalid authentication "
                                             "credentials.", "status": "UNAUTHENTICATED"}})
            name = path[len("/v1/"):]
            fmt = self.repositories.get(name)
            if fmt is None:
                return _json(404, {"error": {"code": 404, "message": "Requested entity was not found.",
                                             "status": "NOT_FOUND"}})
            return _json(200, {"name": name, "format": fmt, "mode": "STANDARD_REPOSITORY",
                               "description": "", "createTime": "2026-01-01T00:00:00Z"})
        return _json(404, {})

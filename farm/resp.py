"""One Redis script call without redis-py, for a process that sends nothing else (a cached answer).

redis-py 8 imports ~290 modules (asyncio, opentelemetry, …): ~75 ms, a quarter of a cached
`farm build`, for the one `cached` history record it writes. This speaks RESP2 over a socket for
`redis://[user:password@]host[:port][/db]` and `unix:///path[?db=N]` URLs; anything else (TLS,
sentinel) returns None and the caller uses redis-py. Errors are `OSError` or `RespError`: the
caller falls back to redis-py, which waits out a restart.
"""

from __future__ import annotations

import hashlib
import socket
from urllib.parse import parse_qs, unquote, urlparse

Reply = str | int | list["Reply"] | None


class RespError(Exception):
    """An error reply (`-ERR …`) or a reply this module cannot read."""


def _command(*args: str | int | float) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def reply(self) -> Reply:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise RespError("connection closed by Redis")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            raise RespError(body.decode(errors="replace"))
        if kind == b":":
            return int(body)
        if kind == b"$":
            n = int(body)
            if n < 0:
                return None
            data = self._file.read(n + 2)
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(body)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RespError(f"unexpected reply {line[:40]!r}")


def eval_script(url: str, script: str, keys: list[str], args: list[str | int | float],
                timeout: float = 5.0) -> tuple[bool, Reply]:
    """(True, reply) of EVALSHA (EVAL when the server lacks the script); (False, None) when the URL
    is not one this module speaks."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    if parsed.scheme == "redis":
        address: str | tuple[str, int] = (parsed.hostname or "127.0.0.1", parsed.port or 6379)
        db = (parsed.path or "/0").strip("/") or "0"
    elif parsed.scheme == "unix":
        address = unquote(parsed.path)
        db = query.get("db", ["0"])[0]
    else:
        return False, None
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = _Reader(sock)
        hello: list[bytes] = []
        if parsed.password is not None:
            user = unquote(parsed.username) if parsed.username else None
            auth = (user, unquote(parsed.password)) if user else (unquote(parsed.password),)
            hello.append(_command("AUTH", *auth))
        if db != "0":
            hello.append(_command("SELECT", db))
        sha = hashlib.sha1(script.encode()).hexdigest()
        # Pipelined: AUTH, SELECT and the call go in one write, one round trip.
        sock.sendall(b"".join([*hello, _command("EVALSHA", sha, len(keys), *keys, *args)]))
        for _ in hello:
            reader.reply()
        try:
            return True, reader.reply()
        except RespError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        sock.sendall(_command("EVAL", script, len(keys), *keys, *args))
        return True, reader.reply()

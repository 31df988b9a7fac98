"""Messages the hardening issue found cut, doubled or flooded: each stays one readable line."""

from __future__ import annotations

import pytest
import redis

from farm.broker import check_broker, with_auth
from farm.errors import BrokerError
from farm.jobs import LOG_LINE_MAX, cap_line


def test_an_unreachable_broker_is_one_sentence_without_its_password() -> None:
    url = "redis://producer:pw-9f3a@127.0.0.1:1/0"
    with pytest.raises(BrokerError) as exc:
        check_broker(redis.Redis.from_url(url, socket_connect_timeout=2), url)
    text = str(exc.value)
    assert "Connection refused. Is the stack up?" in text and ".." not in text
    assert "pw-9f3a" not in text


def test_log_lines_are_capped() -> None:
    assert cap_line("short") == "short"
    long = "x" * (8 * 1024 * 1024)
    capped = cap_line(long)
    assert len(capped) < LOG_LINE_MAX + 100 and capped.endswith("(8,384,512 more characters cut)")


def test_a_worker_login_replaces_the_url_user() -> None:
    assert with_auth("redis://producer:a@127.0.0.1:6390/2", "worker:b") == "redis://worker:b@127.0.0.1:6390/2"
    assert with_auth("redis://127.0.0.1:6390/0", "worker:b") == "redis://worker:b@127.0.0.1:6390/0"
    assert with_auth("redis://127.0.0.1:6390/0", "") == "redis://127.0.0.1:6390/0"

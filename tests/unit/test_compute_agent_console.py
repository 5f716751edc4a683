"""Console tokens (compute/consoleproxy.py): one key per data dir, made once even when several
processes race for it (each worker of a controller then accepts the others' tokens), 0600;
tokens carry their target, expire, and a token of another key or a changed one is refused."""

from __future__ import annotations

import multiprocessing
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from mcloud.compute.consoleproxy import ConsoleAuth, ConsoleDenied, ConsoleTarget, console_url, load_key
from tests.rfb import websocket_url

TARGET = ConsoleTarget(instance_uuid="0b4b7a52-5d0e-4bbf-9c2b-5f64f3c1a001", host="compute-2",
                       address="127.0.0.1", port=5901)


def _key_of(data_dir: str, out) -> None:  # in a forked process
    out.put(load_key(data_dir))


def test_racing_processes_make_one_private_key(tmp_path):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_key_of, args=(str(tmp_path), out)) for _ in range(6)]
    for p in procs:
        p.start()
    keys = {out.get(timeout=20) for _ in procs}
    for p in procs:
        p.join(timeout=20)
    assert len(keys) == 1
    key = tmp_path / "console-key"
    assert key.read_bytes().strip() in keys and key.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["console-key"]  # no temp file left


def test_tokens_work_across_workers_and_nowhere_else(tmp_path):
    worker_a, worker_b = ConsoleAuth(tmp_path, 600), ConsoleAuth(tmp_path, 600)
    token = worker_a.issue(TARGET)
    assert worker_b.check(token) == TARGET
    assert TARGET.address not in token and "compute-2" not in token  # the target is not readable

    other_cloud = ConsoleAuth(tmp_path / "other", 600)
    for bad in (None, "", "garbage", token[:-4] + "AAAA", other_cloud.issue(TARGET)):
        with pytest.raises(ConsoleDenied):
            worker_b.check(bad)


def test_tokens_expire(tmp_path):
    auth = ConsoleAuth(tmp_path, 1)
    token = auth.issue(TARGET)
    assert auth.check(token) == TARGET
    time.sleep(2.2)
    with pytest.raises(ConsoleDenied, match="expired"):
        auth.check(token)


def test_the_url_has_novas_shape():
    url = console_url("http://192.0.2.10:8080/", "tok-en==")
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("192.0.2.10:8080", "/compute/vnc/vnc_lite.html")
    assert parse_qs(parts.query)["path"] == ["compute/vnc/websockify?token=tok-en=="]
    assert websocket_url(url) == "ws://192.0.2.10:8080/compute/vnc/websockify?token=tok-en=="

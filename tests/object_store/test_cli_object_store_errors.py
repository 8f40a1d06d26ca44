"""Object-store problems on the command line (issue 25 items 1, 2, 4; issue 26 item 14): each
kind of problem has its own exit code and one line that says what is wrong and what to do —
against real servers (SeaweedFS, which checks signatures; moto, which knows missing
buckets), a real fault proxy in front of SeaweedFS, and a port where nothing listens.
Exit 4 ("damaged") is never the answer to a network or permission problem.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from helpers.cli import one_clear_line, tv
from helpers.fault_proxy import Fault, FaultProxy
from helpers.seaweed import BUCKET

pytestmark = [pytest.mark.s3, pytest.mark.slow]

BACKFILL = ["backfill", "AAPL", "MSFT", "--source", "demo", "--start", "2024-01-02",
            "--end", "2024-01-31"]  # fmt: skip


def aws_env(opts: dict[str, str], **changes: str | None) -> dict[str, str]:
    """The environment a CLI run needs for the server in ``opts`` (None: unset)."""
    env = {
        "AWS_ENDPOINT_URL": opts["endpoint"],
        "AWS_ACCESS_KEY_ID": opts["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": opts["secret_access_key"],
        "AWS_REGION": "us-east-1",
    }
    for k, v in changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_a_wrong_secret_is_a_permission_error_naming_the_database(seaweed, monkeypatch):
    url = f"s3://{BUCKET}/cli-{uuid.uuid4().hex[:8]}"
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    ok = tv(*BACKFILL, "--db", url, env=aws_env(seaweed))
    assert ok.returncode == 0, ok.stderr
    bad = aws_env(seaweed, AWS_SECRET_ACCESS_KEY="not-the-secret-0000")
    for argv in (["info"], BACKFILL):
        r = tv(*argv, "--db", url, env=bad)
        line = one_clear_line(r)
        assert r.returncode == 7, line
        assert url in line and "permission denied" in line and "403" in line
        assert "<" not in line and "not-the-secret" not in line


def test_missing_credentials_say_which_variables_to_set(seaweed, monkeypatch):
    """No key and no secret: the client asks the cloud metadata server (here a local
    proxy answering 403, as a metadata server off the cloud does); the message names the
    variables and storage_options keys, not the metadata server's answer."""
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    url = f"s3://{BUCKET}/cli-{uuid.uuid4().hex[:8]}"
    with FaultProxy(seaweed["endpoint"], [Fault("403")]) as metadata:
        env = aws_env(seaweed, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
        env["AWS_METADATA_ENDPOINT"] = metadata.endpoint
        r = tv("info", "--db", url, env=env)
    line = one_clear_line(r)
    assert r.returncode == 7, line
    assert "no credentials" in line and url in line
    assert "AWS_ACCESS_KEY_ID" in line and "AWS_SECRET_ACCESS_KEY" in line
    assert "storage_options" in line and "<" not in line


def test_a_missing_bucket_is_not_found_and_named(s3_env):
    for argv in (["info"], BACKFILL):
        r = tv(*argv, "--db", "s3://missing-bucket/x", env=s3_env)
        line = one_clear_line(r)
        assert r.returncode == 3, line
        assert "bucket 'missing-bucket' does not exist" in line and "<" not in line


def test_an_azure_url_without_an_account_says_how_to_give_one(monkeypatch):
    for k in [k for k in os.environ if k.startswith("AZURE_")]:
        monkeypatch.delenv(k)
    r = tv("info", "--db", "az://acct/container/x")
    line = one_clear_line(r)
    assert r.returncode == 7, line
    assert "AZURE_STORAGE_ACCOUNT_NAME" in line and "account_name" in line
    assert "Account must be specified" not in line


def test_an_unreachable_server_has_its_own_exit_code_and_says_nothing_was_lost(s3_env):
    env = {**s3_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    env["TICKVAULT_RETRY_TIMEOUT"] = "1"
    started = time.monotonic()
    r = tv("info", "--db", f"s3://{BUCKET}/x", env=env)
    line = one_clear_line(r)
    assert r.returncode == 75, line
    assert time.monotonic() - started < 30
    assert "nothing committed was lost" in line and "retry_timeout=1s" in line


def test_a_version_that_does_not_exist_is_not_found(tmp_path: Path):
    db = tmp_path / "db"
    assert tv(*BACKFILL, db=db).returncode == 0
    for argv in (["sql", "SELECT count(*) FROM prices", "--version", "99"],
                 ["export", str(tmp_path / "out"), "--version", "99"]):  # fmt: skip
        r = tv(*argv, db=db)
        line = one_clear_line(r)
        assert r.returncode == 3, line
        assert "version 99 does not exist" in line


def test_url_typos_and_memory_are_usage_errors(tmp_path: Path):
    cases = {
        "s3:/bucket/x": "s3://bucket/x",
        "ftp://x/y": "s3://",
        "memory://x": "gone when the command exits",
    }
    for url, text in cases.items():
        for argv in (BACKFILL, ["info"]):
            r = tv(*argv, "--db", url, cwd=tmp_path)
            line = one_clear_line(r)
            assert r.returncode == 2, (url, line)
            assert text in line, line
    assert list(tmp_path.iterdir()) == []  # no folder named s3: or ftp: was created


def test_a_server_that_stops_for_ten_seconds_does_not_fail_a_backfill(seaweed, monkeypatch):
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(k)
    url = f"s3://{BUCKET}/cli-{uuid.uuid4().hex[:8]}"
    tickers = [f"T{i:02d}" for i in range(30)]
    argv = ["backfill", *tickers, "--source", "demo", "--start", "2024-01-02",
            "--end", "2024-01-31", "--source-option", "latency=0.3", "--workers", "2",
            "--json", "--db", url]  # fmt: skip
    with FaultProxy(seaweed["endpoint"]) as proxy:
        env = aws_env(seaweed, AWS_ENDPOINT_URL=proxy.endpoint)

        def outage() -> None:
            while proxy.requests["PUT"] < 1:  # the run has started writing
                time.sleep(0.02)
            # 10 s in both halves: a request in flight when the proxy stops waits for it
            # (a 5 s outage was outlasted by one attempt, so the 2 s budget never ran out)
            proxy.stop_for(10).join()

        t = threading.Thread(target=outage, daemon=True)
        t.start()
        started = time.monotonic()
        r = tv(*argv, env=env, timeout=240)
        took = time.monotonic() - started
        t.join(30)
    assert r.returncode == 0, r.stderr
    assert took > 9  # it waited the outage out
    assert json.loads(r.stdout)["written"] == 30
    # with a budget shorter than the outage: exit 75, committed work stays, --resume goes on
    url2 = f"s3://{BUCKET}/cli-{uuid.uuid4().hex[:8]}"
    argv2 = [*argv[:-1], url2]
    with FaultProxy(seaweed["endpoint"]) as proxy:
        env = aws_env(seaweed, AWS_ENDPOINT_URL=proxy.endpoint, TICKVAULT_RETRY_TIMEOUT="2")
        t = threading.Thread(target=outage, daemon=True)
        t.start()
        r = tv(*argv2, env=env, timeout=240)
        t.join(30)
        assert r.returncode == 75, (r.returncode, r.stderr)
        line = r.stderr.strip().splitlines()[-1]
        assert "--resume" in line and "nothing committed was lost" in line
        again = tv(*argv2, "--resume", env=env, timeout=240)
    assert again.returncode == 0, again.stderr
    info = tv("info", "--json", "--db", url2, env=aws_env(seaweed))
    assert json.loads(info.stdout)["tables"]["prices"]["tickers"] == 30

"""An S3 server for tests: moto's, in this process, on 127.0.0.1 with a free port.

``s3_env`` holds the environment a client needs (endpoint, fake credentials, region);
``s3_url`` is a fresh database URL (a new prefix in one bucket) per test.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest

BUCKET = "tickvault-test"
#: fake credentials; the tests check that they never show up in any output
ACCESS_KEY = "AKIATESTKEY0000SECRETID"
SECRET_KEY = "tvSecret-9f8e7d6c5b4a-DoNotLeak"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server_mod = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    httpx.put(f"{endpoint}/{BUCKET}").raise_for_status()  # create the bucket
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The standard AWS variables pointing at the test server, set in this process too."""
    env = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def s3_url(s3_env: dict[str, str]) -> str:
    return f"s3://{BUCKET}/db-{uuid.uuid4().hex[:10]}"

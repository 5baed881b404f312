"""Schemathesis (its CLI, a real fuzzer) against the running server's own OpenAPI schema:
generated requests (bodies of every declared media type, query values at and around their
bounds, positive and negative) never get a 5xx, and every response follows the schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis", reason="schemathesis (dev extra) is not installed")

CHECKS = ",".join(
    ["not_a_server_error", "status_code_conformance", "content_type_conformance",
     "response_schema_conformance"]
)  # fmt: skip


def test_no_server_errors_and_responses_follow_the_schema(server_url: str, tmp_path: Path) -> None:
    executable = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    command = [
        executable, "run", f"{server_url}/openapi.json", "--checks", CHECKS,
        "--max-examples", "25", "--seed", "7", "--generation-database", "none",
        "--phases", "examples,coverage,fuzzing", "--request-timeout", "120",
    ]  # fmt: skip
    env = {**os.environ, "NO_COLOR": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "3 selected / 3 total" in output  # /predict, /health and /model were all fuzzed
    assert "No issues found" in output and " failed" not in output

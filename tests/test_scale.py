"""The scale and soak benchmark runs (on a tiny size: figures are for benchmarks/, not tests)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "scale.py"


def test_scale_benchmark_runs_on_a_tiny_size(dockernet_client):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--networks", "3", "--loops", "2", "--own-only", "--memory", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (
        "networks alive at once: 3 of 3 (no pool error)",
        "allocator cost per grant",
        "2 topologies",
        "left of its 2 topologies: 0  ok",
        "memory: 3 networks and 3 containers alive in one pytest session",
        "PASS",
    ):
        assert line in result.stdout, result.stdout

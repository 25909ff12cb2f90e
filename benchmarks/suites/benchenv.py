"""What run.py tells the benchmark suites, through the environment.

BENCH_IMAGE  the image every tool runs (pytest-dockernet's probe image)
BENCH_RUN    this benchmark run's id: in every name and label the suites give
BENCH_TESTS  how many times the suite's test runs (one parametrized test)
BENCH_OUT    the directory the conftest writes its records to
"""

import os

IMAGE = os.environ.get("BENCH_IMAGE", "busybox:stable")
RUN = os.environ.get("BENCH_RUN", "local")
TESTS = int(os.environ.get("BENCH_TESTS", "3"))
OUT = os.environ.get("BENCH_OUT", "")

# On every container and network a peer or the raw SDK makes, so that run.py finds (and
# removes) whatever a run leaves. pytest-dockernet labels its own resources.
LABEL = "pytest-dockernet-bench"
LABELS = {LABEL: RUN}
KEEPALIVE = ["tail", "-f", "/dev/null"]
NAMES = ("a", "b", "c")
# The pings (all ordered pairs) and the name resolutions every test checks.
PAIRS = [(s, d) for s in NAMES for d in NAMES if s != d]
LOOKUPS = [("a", "b"), ("b", "c"), ("c", "a")]


def name(tool: str, short: str) -> str:
    """An explicit container name: on this engine a generated one does not resolve by name."""
    return f"dnb-{RUN}-{tool}-{short}"


def resolved(nslookup_output: str, expected_ip: str) -> bool:
    """Whether busybox nslookup's output answers with ``expected_ip`` (after its server lines)."""
    _, _, answer = nslookup_output.partition("Name:")
    return expected_ip in answer

"""The package as a user gets it: an sdist and a wheel that twine accepts, and the wheel in
a fresh venv (dependencies from the index) that lists its options and runs a test."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
FIRST_TEST = """
def test_two_containers_reach_each_other_by_name(dockernet):
    net = dockernet.network("net")
    a = dockernet.container("a", networks=[net])
    dockernet.container("b", networks=[net])
    dockernet.assert_reachable(a, "b")
"""


def run(*command: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    try:
        import build  # noqa: F401 - python -m build
    except ImportError:  # not a skip: the suite's own extra has it
        pytest.fail("python -m build needs the 'build' package: pip install -e '.[test]'", pytrace=False)
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    return out


def test_an_sdist_and_a_wheel_that_twine_accepts(dist):
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    assert "PASSED" in run(sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists)
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "pytest_dockernet/py.typed" in names
    metadata = zipfile.ZipFile(wheels[0]).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    for line in ("License-Expression: MIT", "Classifier: Framework :: Pytest", "Classifier: Typing :: Typed"):
        assert line in metadata
    entry_points = zipfile.ZipFile(wheels[0]).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "dockernet = pytest_dockernet.plugin" in entry_points
    assert "dockernet-lab = pytest_dockernet.lab.__main__:main" in entry_points


def test_the_wheel_in_a_fresh_venv_lists_its_options_and_runs_a_test(dist, tmp_path):
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)  # none of this environment's packages
    python = env / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", next(dist.glob("*.whl")))

    help_text = run(python, "-m", "pytest", "--help")
    for option in ("--dockernet-require", "--dockernet-keep", "--dockernet-logs", "dockernet_subnet_pool"):
        assert option in help_text
    assert "{up,down,status}" in run(env / "bin" / "dockernet-lab", "--help")  # the console script

    project = tmp_path / "project"
    project.mkdir()
    (project / "test_first.py").write_text(FIRST_TEST)
    output = run(python, "-m", "pytest", "-p", "no:cacheprovider", "--dockernet-require", cwd=project)
    assert "1 passed" in output

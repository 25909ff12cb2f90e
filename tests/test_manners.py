"""The plugin as a good neighbour: signals only once it talks to Docker, optional hooks,
deselection without Docker, and another Docker plugin's fixtures in the same run."""

from __future__ import annotations

import shutil
import signal
import site
import subprocess
import venv
from pathlib import Path

import pytest

from pytest_dockernet.builds import BUILD_RUN

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_the_sigterm_handler_comes_with_the_first_docker_call(inner_runs, pytester):
    pytester.makepyfile(
        """
        import signal

        def test_1_without_docker():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

        def test_2_with_docker(dockernet):
            assert getattr(signal.getsignal(signal.SIGTERM), "dockernet", False)
        """
    )
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist")
    result.assert_outcomes(passed=2)


def test_a_sigterm_handler_of_the_project_is_called_and_the_topology_still_goes(inner_runs, pytester):
    pytester.makeconftest(
        """
        import pathlib, signal

        def _ours(signum, frame):
            pathlib.Path("project-handler-called").write_text(str(signum))

        signal.signal(signal.SIGTERM, _ours)
        """
    )
    pytester.makepyfile(
        """
        import os, signal
        from inner_run_spy import record

        def test_cancelled(dockernet):
            record(dockernet.container("c"))
            os.kill(os.getpid(), signal.SIGTERM)
        """
    )
    result = inner_runs.run_subprocess("--dockernet-require", "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert (pytester.path / "project-handler-called").read_text() == str(int(signal.SIGTERM))
    assert len(inner_runs.made()) == 1 and inner_runs.existing(inner_runs.made()) == []


@pytest.fixture
def examples_copy(pytester: pytest.Pytester) -> Path:
    """examples/ in a directory of its own (no repository config around it), plus one test
    that needs no Docker."""
    target = pytester.path / "examples"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "test_plain.py").write_text("def test_needs_no_docker():\n    assert 1 + 1 == 2\n")
    return target


def test_the_examples_collect_with_the_plugin_turned_off(pytester, examples_copy):
    result = pytester.runpytest_subprocess("-p", "no:dockernet", "--collect-only", "-q", str(examples_copy))
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "PluginValidationError" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*test_compose.py::*", "*test_plain.py::test_needs_no_docker*"])


def test_not_dockernet_deselects_every_test_that_needs_docker(pytester, examples_copy, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-engine-here.sock")
    result = pytester.runpytest_subprocess("-m", "not dockernet", "-p", "no:xdist", str(examples_copy))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 passed, * deselected*"])


def sees_this_environment(python: Path) -> None:
    """Let the venv of ``python`` import what this environment has (the plugin among them),
    after its own packages: a ``.pth`` file adds this environment's site directories, their
    own ``.pth`` files (an editable install's) included. Not ``system_site_packages``, which
    would see the base interpreter's packages: when this environment is itself a venv (one
    made from Debian's python3, as the README says), that is Debian's, without the plugin."""
    code = "import site; print(site.getsitepackages()[0])"
    own = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    ours = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    lines = [f"import site; site.addsitedir({path!r})" for path in ours if Path(path).is_dir()]
    Path(own, "this-environment.pth").write_text("\n".join(lines) + "\n")


def test_the_examples_leave_no_image_of_their_own(inner_runs, examples_copy, dockernet_client):
    """The image an example builds for itself goes with the run: only the probe image stays."""
    result = inner_runs.run_subprocess(
        "--dockernet-require", "-p", "no:xdist", str(examples_copy / "test_no_shell_source.py")
    )
    result.assert_outcomes(passed=1)
    (run_id,) = inner_runs.run_ids()
    left = dockernet_client.api.images(filters={"reference": "pytest-dockernet-example/*"})
    left += dockernet_client.api.images(filters={"label": f"{BUILD_RUN}={run_id}"})
    assert left == [], [image["RepoTags"] for image in left]


@pytest.fixture(scope="module")
def venv_with_docker_tools(tmp_path_factory) -> Path:
    """A venv that sees this environment's packages (the plugin among them) plus
    pytest-docker-tools, whose session fixture is called docker_client."""
    where = tmp_path_factory.mktemp("pdt") / "venv"
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    sees_this_environment(python)
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "pytest-docker-tools==3.1.*"]
    done = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return python


def test_pytest_docker_tools_and_dockernet_fixtures_in_one_run(inner_runs, pytester, dockernet, venv_with_docker_tools):
    pytester.makepyfile(
        f"""
        from pytest_docker_tools import container

        box = container(image={dockernet.probe_image!r}, command=["sleep", "60"])

        def test_both(docker_client, dockernet_client, dockernet, box):
            assert docker_client.ping() and dockernet_client.ping()
            assert box.exec_run(["true"])[0] == 0
            ours = dockernet.container("ours")
            dockernet.assert_reachable(ours, dockernet.container("peer"))
        """
    )
    command = [str(venv_with_docker_tools), *inner_runs.pytest_command("--dockernet-require", "-p", "no:xdist")[1:]]
    result = pytester.run(*command, timeout=180)
    result.assert_outcomes(passed=1)
    plugins = next(line for line in result.stdout.lines if line.startswith("plugins:"))
    assert "pytest_docker_tools-3.1" in plugins and "dockernet-" in plugins, plugins

"""What importing the plugin costs: every pytest run in an environment with the plugin
installed imports it, so the parts only some runs use are imported when first used. Each
check runs a fresh interpreter and looks at ``sys.modules`` (never at a clock)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest_dockernet

# The checkout under test, for the fresh interpreters (not another installed copy).
ROOT = Path(pytest_dockernet.__file__).resolve().parents[1]

# Imported by a run only when it uses them: a topology (and all it pulls in), compose and
# YAML, the faults, the lab, the prune, builds, capture, the artifacts' drawing, the
# assertions, web and measurements.
DEFERRED = [
    f"pytest_dockernet.{name}"
    for name in (
        "assertions",
        "build_runs",
        "builds",
        "capture",
        "compose",
        "compose.file",
        "container_specs",
        "containers",
        "context",
        "diagnosis",
        "dockerfile_needs",
        "faults.degradation",
        "faults.dns",
        "faults.helpers",
        "faults.partition",
        "lab",
        "measurements",
        "networks",
        "readiness",
        "reaper",
        "snapshot",
        "topology",
        "topology_svg",
        "warm_pool",
        "web",
    )
]


def fresh(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd or ROOT, env=env, capture_output=True, text=True)


def modules_after(code: str, cwd: Path | None = None) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    done = fresh(f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))", cwd)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_plugin_imports_none_of_the_parts_a_run_may_not_use():
    modules = modules_after("import pytest_dockernet.plugin")
    assert "pytest_dockernet.plugin" in modules and "pytest_dockernet.state" in modules
    assert sorted(modules & {*DEFERRED, "yaml", "tenacity"}) == []


def test_a_run_without_docker_tests_imports_none_of_them(pytester):
    """A whole run with the plugin loaded, one test passing and one failing on ``==`` (the
    plugin's assertrepr hook and failure report see it), up to the end of pytest_unconfigure."""
    pytester.makepyfile(
        test_plain="""
        def test_passes():
            assert 1 + 1 == 2

        def test_fails():
            assert [1, 2] == [1, 3]
        """
    )
    args = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark", "-q", "test_plain.py"]
    modules = modules_after(
        f"import pytest\nassert pytest.main({args!r}) == pytest.ExitCode.TESTS_FAILED", cwd=pytester.path
    )
    assert "pytest_dockernet.plugin" in modules  # the plugin was loaded, as its entry point
    assert sorted(modules & set(DEFERRED)) == []


def test_every_exported_name_is_its_home_modules_object():
    done = fresh(
        """
import importlib, sys
import pytest_dockernet
import pytest_dockernet.faults as faults

for package in (pytest_dockernet, faults):
    assert sorted(set(package.__all__) - set(dir(package))) == [], package
    for name in package.__all__:
        value = getattr(package, name)
        home = sys.modules[getattr(value, "__module__", package.__name__)]
        assert getattr(home, name, value) is value, (package, name)
        exec(f"from {package.__name__} import {name} as imported")
        assert imported is value, (package, name)
try:
    pytest_dockernet.no_such_name
except AttributeError as exc:
    assert "no_such_name" in str(exc)
else:
    raise AssertionError("an unknown name resolved")
print("ok", len(pytest_dockernet.__all__))
"""
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", str(len(pytest_dockernet.__all__))]


def test_a_name_imports_its_part_when_first_used():
    modules = modules_after("import pytest_dockernet")
    assert "pytest_dockernet.compose" not in modules and "pytest_dockernet.topology" not in modules
    modules = modules_after("from pytest_dockernet import ComposeStack")
    assert "pytest_dockernet.compose" in modules


def test_the_assertion_modules_are_rewritten_when_imported_after_the_plugin(pytester):
    """register_assert_rewrite still comes before assertions, web and measurements are
    imported, now that they are imported when first used (here, inside the test)."""
    pytester.makepyfile(
        test_rewritten="""
        import sys

        def test_loaded_late_and_rewritten():
            assert "pytest_dockernet.web" not in sys.modules
            from pytest_dockernet import assert_http, assert_resolves, measure

            for name in ("assertions", "web", "measurements"):
                module = sys.modules[f"pytest_dockernet.{name}"]
                assert type(module.__loader__).__name__ == "AssertionRewritingHook", name
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "test_rewritten.py")
    result.assert_outcomes(passed=1)


def test_a_topology_imports_no_compose_file_reader_nor_what_only_failures_and_options_need():
    modules = modules_after("import pytest_dockernet.plugin, pytest_dockernet.topology")
    assert "pytest_dockernet.topology" in modules and "pytest_dockernet.compose" in modules
    only_some = {"yaml", "pytest_dockernet.compose.file", "pytest_dockernet.lab", "pytest_dockernet.capture"}
    assert sorted(modules & {*only_some, "pytest_dockernet.topology_svg"}) == []

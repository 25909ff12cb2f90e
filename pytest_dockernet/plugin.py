"""pytest glue: the ``dockernet`` marker, fixtures, skips, the run's set-up and summary
(the options themselves are read and checked in :mod:`.settings`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn, cast

import docker  # only for the dockernet_client fixture: users get docker-py's client
import pytest

from . import artifacts, capturing, hooks, process
from .capabilities import CAPABILITIES, Capabilities, probe_engines
from .engine import Engine, answers, as_engine, connect, lost, where
from .engine.docker_engine import DockerEngine
from .engine.errors import APIError
from .errors import EngineUnavailable, ImageUnavailable, LabError, one_line
from .faults import marker as fault_marker
from .image import resolve_probe_image
from .labels import RunIdentity
from .markers import check_marker, marker_kwargs
from .nemesis import SECTION, base_seed
from .progress import build_progress
from .reports import failure_sections, kept_report
from .settings import Settings, add_options
from .skips import capability_of, judge, needs, skip
from .state import RUN_OWNER, State
from .swarm import in_swarm, init_swarm, leave_plugin_swarm, made_by_plugin, require_swarm

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    import pluggy

    from .context import Context
    from .lab import Lab
    from .topology import Topology

# Every pytest run with the plugin installed imports this module: what some runs need is imported where used.

FACTORY_FIXTURES = ("dockernet", "dockernet_module", "dockernet_session")
DOCKER_FIXTURES = frozenset((*FACTORY_FIXTURES, "dockernet_client"))


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:  # pytest and its plugins loaded, no conftest yet
    process.freeze_start_up()


STATE = pytest.StashKey[State]()
# On a node: the factories made for its scope, with the fixture that made each.
TOPOLOGIES: pytest.StashKey[dict[Topology, str]] = pytest.StashKey()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dockernet(driver=None, drivers=None, needs=None): a test of Docker networks; driver= sets the default "
        "network driver of the dockernet fixture, drivers=[...] runs the test once per driver, needs=[...] names "
        f"the engine capabilities it needs (its skip for one of them passes under --dockernet-require): "
        f"{', '.join(CAPABILITIES)}",
    )
    state = State(Settings.from_config(config))
    state.facts.capabilities = Capabilities()
    state.facts.builder, state.facts.build_progress = state.settings.builder, build_progress(config)
    state.join_run(getattr(config, "workerinput", None))
    config.stash[STATE] = state
    artifacts.register(config, state.settings, _used_topologies)  # --dockernet-artifacts, JUnit, pytest-html
    capturing.register(config, state.settings)  # --dockernet-capture, marker capture=
    # Only a run that talks to Docker has anything to tear down on SIGTERM.
    state.on_connect.append(lambda: process.install_sigterm_handler(config))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Bring up the lab, or engine 0's swarm, once per run: in the xdist controller (before
    the workers start) or the only process."""
    state = session.config.stash.get(STATE, None)
    if state is None or state.worker is not None or not (state.settings.lab or state.settings.swarm == "auto"):
        return
    what = "the lab (--dockernet-lab)" if state.settings.lab else "a swarm (--dockernet-swarm auto)"
    try:
        engine = state.engine()  # prunes first: a swarm the plugin made for a dead run is left
        capabilities = state.facts.capabilities.of(engine)
        if state.settings.lab:
            for name in ("lab", "swarm"):  # the lab is a swarm of engine 0 and engines beside it
                verdict = capabilities.verdict(name, state.probe_image, state.identity.labels)
                if not verdict.present:
                    state.setup_error = f"dockernet: no lab (--dockernet-lab): {verdict.skip_reason()}"
                    return
            from .lab import Lab

            with state.timings.measure("lab bring-up"):
                state.lab = Lab.up(state.settings.lab, for_run=True)
        elif not capabilities.verdict("swarm", state.probe_image, state.identity.labels).present:
            return  # no swarm mode (Podman): no swarm, and what needs one skips naming the capability
        elif not in_swarm(engine) or made_by_plugin(engine) is not None:
            # The lease says, to later runs, that this run uses the swarm.
            state.hold_lease(engine, state.probe_image(), swarm_user=True)
            state.swarm_user = True
            if not in_swarm(engine):
                with state.timings.measure("swarm init"):
                    init_swarm(engine, state.identity.labels())
    except (EngineUnavailable, ImageUnavailable) as exc:
        state.setup_error = str(exc)
    except (LabError, APIError, OSError) as exc:
        state.setup_error = f"dockernet: could not make {what}: {exc}"


def _leave_swarm(state: State) -> None:
    """Undo what pytest_sessionstart made: the lab, or the plugin's swarm unless another
    live run uses it too (then the last one to end leaves it). A swarm whose leave would
    break names (see swarm.at_risk) stays, and the summary says why."""
    if state.lab is not None:
        lab, state.lab = state.lab, None
        lab.down()
        if lab.swarm_left.kept_by:
            state.swarm_kept = lab.swarm_left.describe()
    if state.swarm_user and state.connected is not None:
        from .reaper import Judge

        state.swarm_user = False
        engine = state.connected
        leaving = leave_plugin_swarm(engine, Judge(engine, state.identity).swarm_users(engine, but_me=True))
        if leaving.kept_by:
            state.swarm_kept = leaving.describe()


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    settings = Settings.from_config(config)
    if settings.capabilities:
        return _print_capabilities(settings)
    if not settings.prune:
        return None
    # Before configure there is no terminal reporter: plain output is all there is.
    try:
        engine = connect()
    except EngineUnavailable as exc:
        print(f"dockernet: cannot prune: {exc}", file=sys.stderr)
        return 1
    from .reaper import prune

    pruned = prune(engine, RunIdentity())
    print(f"dockernet: {pruned.describe()}")
    return 1 if pruned.failed else 0


def _print_capabilities(settings: Settings) -> int:
    """``--dockernet-capabilities``: every capability of each engine, probed afresh."""
    tables, errors = probe_engines(
        (None, *settings.hosts), lambda e: resolve_probe_image(e, settings.image, settings.busybox).name
    )
    print("\n".join(tables))
    for error in errors:
        print(f"dockernet: {error}", file=sys.stderr)
    return 1 if errors else 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.get_closest_marker("dockernet") and DOCKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("dockernet")


def pytest_collection_finish(session: pytest.Session) -> None:  # items marked above, -k/-m applied
    state, items = session.config.stash.get(STATE, None), session.items
    if state and not session.config.option.collectonly and any(i.get_closest_marker("dockernet") for i in items):
        state.start_early()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    try:
        drivers = check_marker(metafunc.definition, metafunc.fixturenames).get("drivers")
    except pytest.fail.Exception:
        return  # a bad marker fails its own test, when that sets up (pytest_runtest_setup)
    if drivers:
        metafunc.parametrize("dockernet", list(drivers), indirect=True, ids=[str(d) for d in drivers])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _in_report(item, True)
    if item.get_closest_marker("dockernet") is None:
        return
    check_marker(item, list(getattr(item, "fixturenames", ())))
    state = item.config.stash[STATE]
    if state.engine_lost is not None:
        _engine_back_or_fail(state)
    engine = _require_docker(state)
    for name in sorted(needs(item)):  # what the test says it needs, checked before it sets up
        verdict = state.facts.capabilities.of(engine).verdict(name, state.probe_image, state.identity.labels)
        if not verdict.present:
            skip(verdict.skip_reason())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    _in_report(item, False)
    state = item.config.stash.get(STATE, None)
    if nextitem is None and state is not None and state.pool is not None and not state.makes_swarm():
        state.pool.ending = True  # this process's last test: see WarmPool.ending


def _in_report(item: pytest.Item, shown: bool) -> None:
    """Whether the report of a failure shows the topologies the test uses (so its message
    leaves them out): in set-up and call, not in teardown, where they are going away."""
    for _, topology in _used_topologies(item):
        topology.context.reported = shown
        if shown:  # a module's or session's topology: an earlier test's failed probe is not this one's
            topology.context.failed_probe = None


def _engine_answers(state: State) -> bool:
    return answers(where(state.connected))


def _engine_back_or_fail(state: State) -> None:
    """After the engine stopped answering, each later test asks once (briefly) whether it is
    back, and fails or skips at once with one line if not."""
    if _engine_answers(state):
        state.engine_lost = None
        return
    why = f"{state.engine_lost} (earlier in this run)"
    if state.settings.require:
        pytest.fail(f"{why} (--dockernet-require is set)", pytrace=False)
    skip(why)


def _require_docker(state: State) -> Engine:
    try:
        return state.engine()
    except EngineUnavailable as exc:
        why = str(exc)
    # Outside the except block, so the report does not chain the two exceptions.
    if state.settings.require:
        pytest.fail(f"{why} (--dockernet-require is set)", pytrace=False)
    skip(f"{why} (pass --dockernet-require to make this an error)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, None]:
    """@pytest.mark.dockernet(partition=..., degrade=...): the faults right before the test
    body, lifted right after it (a module's topology goes on to its next test unharmed)."""
    marker = item.get_closest_marker("dockernet")
    seed = base_seed(item.config.stash[STATE].settings.seed if STATE in item.config.stash else None)
    for _, topology in _used_topologies(item):
        topology.context.nemeses.begin(seed)  # the test's nemeses draw from it: --dockernet-seed replays them
    applied = []
    if marker is not None and set(fault_marker.ARGUMENTS) & set(marker.kwargs):
        contexts = [topology.context for _, topology in _used_topologies(item)]
        if not contexts:
            named = "/".join(f"{k}=" for k in fault_marker.ARGUMENTS)
            pytest.fail(f"{item.nodeid}: @pytest.mark.dockernet({named}) needs a dockernet fixture")
        try:
            applied = fault_marker.apply_marked(contexts, marker.kwargs)
        except (ValueError, TypeError) as exc:
            pytest.fail(f"{item.nodeid}: @pytest.mark.dockernet: {exc}", pytrace=False)
    try:
        yield
    finally:
        fault_marker.lift_all(applied)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    reason = lost(call.excinfo.value) if call.excinfo is not None else None
    state = item.config.stash.get(STATE, None)
    if report.skipped and state is not None:
        judge(item, call, report, state.settings.require)
    if report.failed and reason and state is not None and not _engine_answers(state):
        # One line instead of the SDK's thousand: what happened, not where in requests. (A
        # test's own connection error, with the engine still answering, is left alone.)
        state.engine_lost = f"the Docker engine at {where(state.connected)} stopped answering: {reason}"
        report.longrepr = f"{item.nodeid}: {state.engine_lost}"
    if report.failed:
        # The factories this test used, found on its nodes: funcargs would miss one whose
        # dependent fixture raised during setup.
        for node in item.listchain():
            for topology in node.stash.get(TOPOLOGIES, ()):
                topology.failed = True
        if report.when in ("setup", "call") and state is not None:
            _add_failure_sections(item, report, state)


def pytest_assertrepr_compare(op: str, left: object, right: object) -> list[str] | None:
    """``matrix == {(src, dst): bool}`` that fails: each differing cell with its diagnosis."""
    assertions = sys.modules.get(f"{__package__}.assertions")  # not imported yet: no matrix exists
    matrix = assertions is not None and isinstance(left, assertions.ReachabilityMatrix)
    return cast(Any, left).compared(right) if op == "==" and matrix else None


def _used_topologies(item: pytest.Item) -> list[tuple[str, Topology]]:
    """The factories a test uses, its own first: any made for one of its nodes by a
    dockernet fixture in its closure (requested directly or through another fixture)."""
    requested = set(getattr(item, "fixturenames", ()))
    return [
        (name, topology)
        for node in reversed(item.listchain())
        for topology, name in node.stash.get(TOPOLOGIES, {}).items()
        if name in requested
    ]


def _add_failure_sections(item: pytest.Item, report: pytest.TestReport, state: State) -> None:
    """The topologies, logs and stopped containers of a failed test, in its report."""
    used = _used_topologies(item)
    if not used:
        return
    silent = state.engine_lost
    if silent is None and not _engine_answers(state):
        silent = f"the Docker engine at {where(state.connected)} did not answer"
    sections = failure_sections(used, log_lines=state.settings.logs, engine_silent=silent)
    nemeses = "\n".join(filter(None, (t.context.nemeses.report(item.nodeid) for _, t in used)))
    sections += [(SECTION, nemeses)] if nemeses else []
    # Beside the traceback when there is one: pytest's JUnit XML writes the traceback (its
    # sections too) but no report section other than captured output.
    add = getattr(report.longrepr, "addsection", None)
    for title, text in sections:
        if add is not None:
            add(title, text)
        else:
            report.sections.append((title, text))


@pytest.fixture(scope="session")
def dockernet_client(pytestconfig: pytest.Config) -> docker.DockerClient:
    """The session's Docker client, from the environment (``DOCKER_HOST`` etc.)."""
    return cast(DockerEngine, _require_docker(pytestconfig.stash[STATE])).client  # connect() makes DockerEngines


def _dockernet(request: pytest.FixtureRequest, dockernet_client: docker.DockerClient) -> Iterator[Topology]:
    state = request.config.stash[STATE]
    marker = request.node.get_closest_marker("dockernet")
    driver = getattr(request, "param", None) or marker_kwargs(marker, request.node.nodeid).get("driver") or "bridge"
    engines, why = [], None
    try:
        engines = state.engines()
    except EngineUnavailable as exc:
        why = str(exc)
    if why is not None:
        _unavailable(state, why, True)
    try:
        image = state.probe_image()
    except ImageUnavailable as exc:
        image, why = None, str(exc)
    if image is None:
        pytest.fail(cast(str, why), pytrace=False)  # set with image None
    # The fixture's client, as the topology's: a conftest may override dockernet_client.
    engine = as_engine(dockernet_client)
    state.hold_lease(engine, image)
    from .topology import Topology

    topology = Topology(
        dockernet_client,
        identity=state.identity,
        image=image,
        default_driver=driver,
        dns=state.settings.dns,
        allocator=state.allocator,
        hooks=request.config.hook,
        label=request.node.nodeid or "session",
        timings=state.timings,
        engines=engines,
        facts=state.facts,
        unavailable=lambda reason, explicit: _unavailable(state, reason, explicit),
        pool=state.warm_pool(engine, image),
        host_address=state.settings.host_address,
        fault_image=state.settings.fault_image,
    )
    topology.context.reported = True  # a failing test's report shows it: messages leave it out
    if driver == "overlay":
        require_swarm(topology.context, "@pytest.mark.dockernet(driver='overlay')")
    state.live.add(topology)
    request.node.stash.setdefault(TOPOLOGIES, {})[topology] = request.fixturename
    try:
        yield topology
    finally:
        keep = state.settings.keep and topology.failed
        # Only a test's own factory is removed in the background: a module's or session's
        # end is where users look for its resources to be gone.
        later = state.remover if request.scope == "function" and state.settings.teardown == "background" else None
        try:
            topology.close(keep=keep, later=later)
        except Exception as exc:
            if lost(exc) is None:
                raise
            _teardown_failed(state, topology.context, exc)
            raise
        finally:
            state.live.discard(topology)  # else pytest_unconfigure finishes the removal
        request.node.stash[TOPOLOGIES].pop(topology)
        if keep:
            state.kept.append(kept_report(topology.context))


def _unavailable(state: State, reason: str, explicit: bool) -> NoReturn:
    """A capability the test needs is missing: skip, or fail under --dockernet-require when
    the test asked for it explicitly. A named capability's skip is judged at the report
    (skips.judge): it passes under --dockernet-require for a test marked as needing it."""
    __tracebackhide__ = True
    if capability_of(reason) is not None:
        skip(reason)
    if explicit and state.settings.require:
        pytest.fail(f"{reason} (--dockernet-require is set)", pytrace=False)
    skip(reason + ("" if not explicit else " (pass --dockernet-require to make this an error)"))


@pytest.fixture(scope="session")
def dockernet_lab(pytestconfig: pytest.Config) -> Lab:
    """The multi-engine lab of the run (``--dockernet-lab N``): ``partition(i)``, ``heal(i)``,
    ``client(i)``, ``hosts``."""
    state = pytestconfig.stash[STATE]
    if not state.settings.lab:
        _unavailable(state, "dockernet_lab needs a lab: pass --dockernet-lab N (N engines, 2 to 8; Linux, root)", True)
    if state.setup_error is not None:
        _unavailable(state, state.setup_error, True)
    lab = state.current_lab()
    if lab is None:
        _unavailable(state, "--dockernet-lab: no lab is up", True)
    return lab


dockernet = pytest.fixture(name="dockernet")(_dockernet)
dockernet_module = pytest.fixture(scope="module", name="dockernet_module")(_dockernet)
dockernet_session = pytest.fixture(scope="session", name="dockernet_session")(_dockernet)


def _notes(state: State, config: pytest.Config) -> list[str]:
    """What this process has to say at the end of the run (not the timings): the probe
    image when this run pulled or built it (with -v, also when it was there already)."""
    notes = []
    image = state.image
    if image is not None and (image.changed or (image.built_from and config.getoption("verbose") > 0)):
        notes.append(image.describe())
    if state.pruned:
        notes.append(state.pruned.describe())
    if state.swarm_kept:
        notes.append(state.swarm_kept)
    notes.extend(state.facts.capabilities.summary() if state.facts.capabilities is not None else [])
    return notes


def _teardown_failed(state: State, context: Context, exc: BaseException) -> None:
    """Note, for the summary, a topology that could not be removed and how to remove it."""
    why = _why(exc)
    command = context.removal_command()
    state.teardown_errors.append(f"teardown of {context.label} failed: {why}\n  remove with: {command}")


def _why(exc: BaseException) -> str:
    return f"the Docker engine stopped answering ({lost(exc)})" if lost(exc) else one_line(exc)


def _finish_teardowns(state: State) -> None:
    """Wait for the removals still running in the background; retry a failed one once."""
    for removal, exc in state.remover.wait():
        if lost(exc) is None:
            try:
                removal.remove()
                continue
            except Exception as again:  # noqa: BLE001 - reported, and the run fails
                exc = again
        _teardown_failed(state, removal.context, exc)


# Last: after pytest's own tears down the fixtures an interrupt (Ctrl-C) left standing, so
# that the lab and the swarm are undone after every topology, and see none of the run's.
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    if state is not None:
        _finish_teardowns(state)
        if state.worker is None:  # the process that made the lab or the swarm: undone before the summary
            try:
                _leave_swarm(state)
            except Exception as exc:  # noqa: BLE001 - said in the summary; the run fails, as for a teardown
                state.teardown_errors.append(f"taking down the lab or leaving the swarm failed: {_why(exc)}")
        if state.teardown_errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if state is not None and hasattr(config, "workeroutput"):
        # An xdist worker's terminal is not shown: send the summary to the controller.
        config.workeroutput["dockernet"] = {
            "seconds": dict(state.timings.seconds),
            "counts": dict(state.timings.counts),
            "notes": _notes(state, config) + state.teardown_errors,
            "kept": state.kept,
            "builds": state.named_builds(),
        }


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:  # an xdist WorkerController
    """xdist controller: give a worker the run's owner, so that what its build() names is
    labelled as this process's (which removes it at the end, once every worker is gone)."""
    state = node.config.stash.get(STATE, None)
    if state is not None:
        node.workerinput[RUN_OWNER] = state.owner_labels()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """xdist controller: its workers talk to Docker, it does not. Once one sets up a test of
    the plugin's, SIGTERM here must end the run as Ctrl-C does, so the workers tear down."""
    node = getattr(report, "node", None)  # the worker's, on reports the controller receives
    if node is not None and report.when == "setup" and "dockernet" in report.keywords:
        process.install_sigterm_handler(node.config)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist controller: take in what a worker reported (see pytest_sessionfinish)."""
    report = getattr(node, "workeroutput", {}).get("dockernet")
    state = node.config.stash.get(STATE, None)
    if report is None or state is None:
        return
    state.timings.add(report["seconds"], report["counts"])
    state.worker_notes.extend(n for n in report["notes"] if n not in state.worker_notes)
    state.kept.extend(report["kept"])
    state.worker_builds.update(report.get("builds", ()))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    lines = []
    if state.timings.counts:
        lines.append(state.timings.describe())
        lines.extend(filter(None, [state.timings.describe_pool()]))
    lines.extend(n for n in state.worker_notes + _notes(state, config) + state.teardown_errors if n not in lines)
    state.reported_errors = len(state.teardown_errors)
    if state.kept:
        lines.append("kept after failures (--dockernet-keep):")
        lines.extend(state.kept)
    if lines:
        terminalreporter.write_sep("-", "dockernet")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    # Nothing may raise from here (it runs after the summary): what fails is said in a line.
    for step in (
        lambda: _finish_teardowns(state),
        *(lambda t=t: _close_at_exit(state, t) for t in list(state.live)),
        state.close_pool_for_swarm,  # a swarm leave waits for its containers to be gone
        lambda: _leave_swarm(state),
        state.remove_builds,  # in the process that ends the run; workers are gone by now
        state.end,  # last, after every topology: the pool, the last test's containers, the lease
    ):
        try:
            cast("Callable[[], object]", step)()  # to mypy, a `lambda t=t:` makes them untyped
        except Exception as exc:  # noqa: BLE001 - reported in one line
            print(f"dockernet: at the end of the run: {_why(exc)}", file=sys.stderr)
    for line in state.teardown_errors[state.reported_errors :]:
        print(f"dockernet: {line}", file=sys.stderr)
    if state.connected is not None:
        state.connected.close()


def _close_at_exit(state: State, topology: Topology) -> None:
    """A teardown that never ran (e.g. an internal error, an interrupt) is finished here."""
    try:
        topology.close()
    except Exception as exc:  # noqa: BLE001 - said with the command that removes the rest
        _teardown_failed(state, topology.context, exc)

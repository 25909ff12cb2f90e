"""Proof that a fault took (issue 25): every fault checks its rules right after applying
them, so one that did not take fails the call and leaves nothing; ``verify()`` checks and
measures on demand; what was applied, lifted and measured is in the topology's description,
its timeline and a failing test's report."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from faults_support import helper_of, run_in_helper

from pytest_dockernet import DockernetError, Measurement, assert_reachable, assert_unreachable
from pytest_dockernet.description import LIFTED_SHOWN
from pytest_dockernet.snapshot import snapshot
from pytest_dockernet.topology_svg import LIFTED_DRAWN, render_svg, render_text

pytestmark = pytest.mark.dockernet


def chains_in(client, dockernet, container) -> list[str]:
    """The plugin's fault chains and jumps in ``container``'s namespace, read behind its back."""
    rules = run_in_helper(client, helper_of(client, dockernet, container), "iptables -w -S")
    return [rule for rule in rules.splitlines() if "DN-" in rule]


def texts(svg: str) -> list[str]:
    return [e.text or "" for e in ET.fromstring(svg.encode()).iter() if e.tag.endswith("}text")]


def timeline_of(dockernet) -> list[str]:
    return [event.what for event in dockernet.context.timeline.events()]


def test_a_partition_whose_rules_vanish_as_it_is_applied_fails_the_call_and_leaves_nothing(
    dockernet, dockernet_client, three, monkeypatch
):
    """The rules vanish from one member between apply() and the check (deleted through its
    fault helper, as something else in the namespace could): partition() raises naming that
    member, and what was put in the other member is lifted."""
    a, b, c = three
    helpers = dockernet.context.faults.helpers
    run = helpers.run

    def vanishing(member, script):
        result = run(member, script)
        if member is c and "-N DN-P1-o" in script:
            run(member, "iptables -w -D OUTPUT -j DN-P1-o")  # its jump gone: the chain catches nothing
        return result

    monkeypatch.setattr(helpers, "run", vanishing)
    with pytest.raises(
        DockernetError,
        match=r"^partition #1 \[a, c\] \| \[b\], drop: its rules are not in force in 'c''s network namespace: "
        r"iptables: no DN-P1-o from OUTPUT$",
    ):
        dockernet.partition([a, c], b)
    monkeypatch.undo()
    assert dockernet.faults == []
    assert chains_in(dockernet_client, dockernet, a) == chains_in(dockernet_client, dockernet, c) == []
    assert_reachable(a, b)
    assert_reachable(c, b)
    assert "partition #1" not in "\n".join(timeline_of(dockernet))  # never in force


def test_verify_measures_a_partition_and_the_reports_show_it(dockernet, three):
    a, b, _ = three
    partition = dockernet.partition(a, b)
    assert partition.measured is None and not partition.describe().endswith("measured loss 1.0")
    measured = partition.verify()
    assert isinstance(measured, Measurement) and measured.loss == 1.0 and measured.sent == 20
    assert partition.measured == "loss 1.0" and partition.measurement is measured
    line = partition.describe()
    assert re.fullmatch(r"partition #1 \[a\] \| \[b\], drop, since \d+\.\d\d s, measured loss 1.0", line), line
    assert f"  faults in force:\n    {partition.describe()}" in dockernet.describe()
    assert [line for line in timeline_of(dockernet) if line.startswith("partition")] == [
        "partition #1 [a] | [b], drop: applied",
        "partition #1 [a] | [b], drop: measured loss 1.0",
    ]


def test_verify_fails_naming_the_member_whose_rules_vanished(dockernet, dockernet_client, three):
    """Deleted behind the plugin's back after the call returned: verify() says so, names
    the member, and measures nothing."""
    a, b, c = three
    partition = dockernet.partition([a, c], b)
    run_in_helper(dockernet_client, helper_of(dockernet_client, dockernet, c), "iptables -w -D OUTPUT -j DN-P1-o")
    with pytest.raises(DockernetError, match=r"^partition #1 .*: its rules are not in force in 'c''s network"):
        partition.verify()
    with pytest.raises(DockernetError, match=r"in 'c''s network namespace"):
        partition.check()
    assert partition.measured is None and ", measured" not in dockernet.describe()
    assert_unreachable(a, b)  # a's rules are still there
    partition.heal()
    assert_reachable(c, b)


def test_verify_measures_a_degradation_loss_and_rate(dockernet, three):
    a, b, _ = three
    with dockernet.degrade(a, loss=1.0, to=[b]) as lossy:
        measured = lossy.verify()
        assert isinstance(measured, Measurement) and measured.loss == 1.0
        assert lossy.measured == "loss 1.0"
        assert lossy.describe().startswith("degrade #1 a: loss 1, to [b], since ")
        assert lossy.describe().endswith(", measured loss 1.0")
    with dockernet.degrade(a, rate="1mbit") as capped:
        bits = capped.verify()  # towards a container a shares a network with
        assert isinstance(bits, float) and 0 < bits < 1.5e6
        assert re.fullmatch(r"rate 0\.\d\d mbit/s|rate 1\.[0-4]\d mbit/s", capped.measured or ""), capped.measured
        assert capped.title() == "degrade #2 a: rate 1mbit"
    assert dockernet.faults == []


def test_lifted_faults_are_described_with_how_long_they_were_in_force(dockernet, three):
    a, b, c = three
    with dockernet.partition(a, b) as partition:
        partition.verify()
    degradation = dockernet.degrade(c, loss=0.5)
    with pytest.raises(DockernetError, match=r"^partition #1 \[a\] \| \[b\], drop: it was lifted; there is nothing"):
        partition.verify()
    said = dockernet.describe()
    assert re.search(
        r"  faults in force:\n    degrade #2 c: loss 0\.5, since \d+\.\d\d s\n"
        r"  faults lifted during the test:\n"
        r"    partition #1 \[a\] \| \[b\], drop, since \d+\.\d\d s, lifted after \d+\.\d s, measured loss 1\.0$",
        said,
    ), said
    assert repr(partition).endswith(" (healed)>")
    doc = snapshot([dockernet.context])  # what a failing test's artifacts draw
    (lifted,) = doc["lifted"]
    assert (lifted["text"], lifted["measured"]) == (partition.title(), "loss 1.0")
    assert 0 <= lifted["since"] <= lifted["lifted"]
    assert re.search(
        r"\nfaults lifted during the test:\n  partition #1 \[a\] \| \[b\], drop \(\d+\.\d s to \d+\.\d s, "
        r"measured loss 1\.0\)\n",
        render_text(doc),
    ), render_text(doc)
    assert f"lifted: {partition.title()} (" in render_svg(doc)
    degradation.restore()
    assert "faults in force" not in dockernet.describe()
    assert [line for line in timeline_of(dockernet) if line.startswith("degrade")] == [
        "degrade #2 c: loss 0.5: applied",
        "degrade #2 c: loss 0.5: lifted",
    ]


def test_the_description_shows_the_last_lifted_faults_only(dockernet, three):
    """A nemesis lifts a fault every second or so: the report shows the last 20."""
    a, b, _ = three
    for _ in range(LIFTED_SHOWN + 2):
        dockernet.partition(a, b).heal()
    said = dockernet.describe().split("  faults lifted during the test:\n")[1].splitlines()
    assert said[0] == "    (2 earlier ones: the timeline has them)"
    assert [line.split(",")[0] for line in said[1:]] == [
        f"    partition #{n} [a] | [b]" for n in range(3, LIFTED_SHOWN + 3)
    ]


def test_the_drawing_shows_the_last_lifted_faults_only():
    lifted = [
        {"text": f"partition #{n} [a] | [b], drop", "since": n * 0.1, "lifted": n * 0.1 + 0.05, "measured": None}
        for n in range(1, LIFTED_DRAWN + 4)
    ]
    doc = {"version": 1, "label": "t", "networks": [], "containers": [], "faults": [], "lifted": lifted}
    said = texts(render_svg(doc))
    assert "lifted: 3 earlier faults (topology.json has them)" in said
    assert [t for t in said if t.startswith("lifted: partition")] == [
        f"lifted: partition #{n} [a] | [b], drop ({n * 0.1:.1f} s to {n * 0.1 + 0.05:.1f} s)"
        for n in range(4, LIFTED_DRAWN + 4)
    ]


def test_a_failing_tests_report_shows_what_was_applied_lifted_and_measured(inner_runs, pytester):
    pytester.makepyfile(
        test_proof="""
        def test_fails(dockernet):
            net = dockernet.network("front")
            api, db = (dockernet.container(n, networks=[net]) for n in ("api", "db"))
            with dockernet.degrade(api, loss=0.5):
                pass
            dockernet.partition(api, db).verify()
            assert False, "the application did not cope"
        """
    )
    result = inner_runs.run("--dockernet-artifacts=artifacts")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert re.search(
        r"\n  faults in force:\n    partition #2 \[api\] \| \[db\], drop, since \d+\.\d\d s, measured loss 1\.0\n"
        r"  faults lifted during the test:\n    degrade #1 api: loss 0\.5, since \d+\.\d\d s, lifted after \d+\.\d s\n",
        output,
    ), output
    (timeline,) = pytester.path.glob("artifacts/*/timeline.txt")
    lines = timeline.read_text()
    for event in (
        "degrade #1 api: loss 0.5: applied",
        "degrade #1 api: loss 0.5: lifted",
        "partition #2 [api] | [db], drop: applied",
        "partition #2 [api] | [db], drop: measured loss 1.0",
    ):
        assert event in lines, lines


def test_a_marked_fault_shows_in_the_report_of_the_test_it_was_applied_to(inner_runs, pytester):
    """The marker's faults are lifted right after the test body, before the report is
    made: the report lists them as lifted during the test, with how long they were in force."""
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.fixture
        def pair(dockernet):
            return dockernet.container("api"), dockernet.container("db")

        @pytest.mark.dockernet(partition=[["api"], ["db"]])
        def test_fails(dockernet, pair):
            assert False, "the application did not cope"
        """
    )
    result = inner_runs.run()
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert re.search(
        r"\n  faults lifted during the test:\n    partition #1 \[api\] \| \[db\], drop, since \d+\.\d\d s, "
        r"lifted after \d+\.\d s\n",
        output,
    ), output
    assert "faults in force" not in output

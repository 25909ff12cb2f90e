"""dockernet.build(): an image from a context directory, built once per run by content (also
across xdist workers); its errors; and what is left on the engine after the run."""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from pathlib import Path

import docker.errors
import pytest

from pytest_dockernet import DockernetError


def make_context(where: Path, probe_image: str, greeting: str = "hello", extra: str = "") -> Path:
    """A context whose image has /greeting.txt, FROM the probe image."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "Dockerfile").write_text(f"FROM {probe_image}\nCOPY greeting.txt /greeting.txt\n{extra}")
    (where / "greeting.txt").write_text(greeting + "\n")
    return where


def builds(dockernet) -> int:
    return dockernet.context.timings.counts.get("image builds", 0)


def greeting_in(dockernet, name: str, image: str) -> str:
    container = dockernet.container(name, image=image, command=["sleep", "600"])
    code, output = container.exec(["cat", "/greeting.txt"])
    assert code == 0, output
    return output.strip()


def image_exists(client, ref: str) -> bool:
    try:
        client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_a_built_image_runs_and_has_the_context_files(dockernet, tmp_path):
    before = builds(dockernet)
    image = dockernet.build(make_context(tmp_path / "ctx", dockernet.probe_image, "built here"))
    assert image.startswith("pytest-dockernet/build:")
    assert greeting_in(dockernet, "app", image) == "built here"
    assert builds(dockernet) == before + 1


def test_the_same_content_is_built_once_per_run(dockernet, tmp_path):
    greeting = f"once {uuid.uuid4().hex}"
    first = dockernet.build(make_context(tmp_path / "a", dockernet.probe_image, greeting))
    before = builds(dockernet)
    # Again, and from another directory with the same files: the key is the content.
    assert dockernet.build(tmp_path / "a") == first
    assert dockernet.build(str(make_context(tmp_path / "b", dockernet.probe_image, greeting))) == first
    assert builds(dockernet) == before
    assert greeting_in(dockernet, "app", first) == greeting


def test_changed_content_arguments_or_dockerfile_rebuild(dockernet, tmp_path):
    context = make_context(tmp_path / "ctx", dockernet.probe_image, "one", extra="ARG FLAVOUR=plain\n")
    (context / ".dockerignore").write_text("# not sent to the engine\nnotes.txt\n")
    (context / "notes.txt").write_text("draft")
    first = dockernet.build(context)
    before = builds(dockernet)

    (context / "notes.txt").write_text("another draft")  # ignored: not part of the content
    assert dockernet.build(context) == first
    assert builds(dockernet) == before

    (context / "greeting.txt").write_text("two\n")
    second = dockernet.build(context)
    assert second != first
    assert builds(dockernet) == before + 1
    assert greeting_in(dockernet, "second", second) == "two"
    assert greeting_in(dockernet, "first", first) == "one"  # the earlier build stays for the run

    third = dockernet.build(context, buildargs={"FLAVOUR": "spicy"})
    (context / "Other.Dockerfile").write_text((context / "Dockerfile").read_text())
    fourth = dockernet.build(context, dockerfile="Other.Dockerfile")
    assert len({first, second, third, fourth}) == 4
    assert builds(dockernet) == before + 3


@pytest.fixture(params=["legacy", "run's"])
def builder(request, dockernet, monkeypatch):
    """Each builder: the legacy one, and the run's (BuildKit where a docker CLI has it here)."""
    if request.param == "legacy":
        monkeypatch.setattr(dockernet.context.facts, "builder", "legacy")
    return request.param


def test_a_failed_build_shows_its_output_and_leaves_no_step_image(dockernet, dockernet_client, tmp_path, builder):
    token = uuid.uuid4().hex
    extra = f"COPY greeting.txt /copied-{token}.txt\nRUN echo marker-before-failing && exit 3\n"
    context = make_context(tmp_path / "ctx", dockernet.probe_image, extra=extra)
    before = builds(dockernet)
    with pytest.raises(DockernetError) as failed:
        dockernet.build(context)
    message = str(failed.value)
    # The legacy builder's words, or BuildKit's.
    assert re.search(r"returned a non-zero code: 3|exit code: 3", message), message
    assert "last lines of the build output:" in message
    assert "RUN echo marker-before-failing && exit 3" in message  # the failing step
    assert re.search(r"\n  (#\d+ [0-9.]+ )?marker-before-failing\n", message)  # and what it wrote
    assert builds(dockernet) == before
    # The COPY steps' images this build committed went with it (the FROM's image stays).
    dangling = dockernet_client.api.images(all=True, filters={"dangling": True})
    assert [i["Id"] for i in dangling if made_by_step(dockernet_client, i, token)] == []
    assert image_exists(dockernet_client, dockernet.probe_image)


def made_by_step(client, image: dict, token: str) -> bool:
    try:
        return token in json.dumps(client.api.inspect_image(image["Id"]).get("ContainerConfig"))
    except docker.errors.ImageNotFound:
        return False


def test_a_dockerfile_the_engine_cannot_parse_says_why(dockernet, tmp_path, builder):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {dockernet.probe_image}\nFORM typo\n")
    with pytest.raises(DockernetError, match=r"failed: .*dockerfile parse error line 2: unknown instruction: FORM"):
        dockernet.build(context)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"path": "missing"}, ValueError, r"path='.*missing' does not exist: give the build context"),
        ({"path": "ctx/greeting.txt"}, ValueError, r"path='.*greeting.txt' is not a directory"),
        ({"path": 42}, TypeError, r"path must be a directory's path as a str or pathlib.Path, got 42"),
        ({"path": "empty"}, ValueError, r"path='.*empty' has no Dockerfile: add one, or name yours with dockerfile="),
        ({"dockerfile": "../Dockerfile"}, ValueError, r"dockerfile='../Dockerfile' is outside the context"),
        ({"dockerfile": "Nope.Dockerfile"}, ValueError, r"dockerfile='Nope.Dockerfile' is not a file in the context"),
        ({"dockerfile": 3}, TypeError, r"dockerfile must be a file's path in the context as a str, got 3"),
        ({"buildargs": {"VERSION": 1}}, TypeError, r"buildargs: 'VERSION' is 1 \(int\); values are str: pass '1'"),
        ({"buildargs": ["VERSION=1"]}, TypeError, r"buildargs must be a dict of str to str such as"),
        ({"buildargs": {"": "x"}}, TypeError, r"buildargs: the name '' is not a non-empty str"),
        ({"tag": "My App:1"}, ValueError, r"tag='My App:1' is not a valid image reference: a name of lowercase"),
        ({"tag": "app:bad tag"}, ValueError, r"tag='app:bad tag' is not a valid image reference"),
        ({"tag": "app@sha256:" + "a" * 64}, ValueError, r"is not a valid image reference"),
        ({"tag": "a" * 64}, ValueError, r"is not a valid image reference"),
        ({"tag": 7}, TypeError, r"tag must be an image reference as a str such as 'myapp:test', got 7"),
        ({"target": ""}, TypeError, r"target must be the name of a stage of the Dockerfile"),
        ({"labels": {"a": 1}}, TypeError, r"labels must be a dict of str to str"),
        ({"labels": {"pytest-dockernet.role": "x"}}, ValueError, r"are pytest-dockernet's own labels"),
        ({"network": "backend"}, ValueError, r"network='backend': a build's RUN steps use 'default', 'host' or"),
        ({"cache_from": "app:cache"}, TypeError, r"cache_from must be a list of image references"),
        ({"dockerfile": "Dockerfile", "dockerfile_inline": "FROM x"}, ValueError, r"exclude each other"),
        ({"dockerfile_inline": ""}, TypeError, r"dockerfile_inline must be a Dockerfile's text"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_built(dockernet, tmp_path, monkeypatch, kwargs, error, match):
    make_context(tmp_path / "ctx", dockernet.probe_image)
    (tmp_path / "empty").mkdir()
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")  # outside the context
    monkeypatch.chdir(tmp_path)
    arguments = {"path": "ctx", **kwargs}
    before = builds(dockernet)
    with pytest.raises(error, match=match):
        dockernet.build(arguments.pop("path"), **arguments)
    assert builds(dockernet) == before


def test_valid_tags_are_taken(dockernet, tmp_path):
    from pytest_dockernet.builds import check_build

    make_context(tmp_path, dockernet.probe_image)
    for tag in ("app", "app:1.2-rc_1", "team/app:test", "registry.local:5000/team/my-app__x:v1", "Host.Example/a"):
        assert check_build(tmp_path, tag, None, None).tag == tag


def test_untagged_images_go_with_the_run_and_tagged_ones_stay(inner_runs, pytester, dockernet_client):
    kept = f"pytest-dockernet-test/build-kept:{uuid.uuid4().hex[:8]}"
    refs = pytester.path / "refs"
    pytester.makepyfile(
        f"""
        def context(tmp_path, probe_image):
            (tmp_path / "Dockerfile").write_text(f"FROM {{probe_image}}\\nCOPY greeting.txt /greeting.txt\\n")
            (tmp_path / "greeting.txt").write_text("hi\\n")
            return tmp_path

        def test_builds(dockernet, tmp_path):
            untagged = dockernet.build(context(tmp_path, dockernet.probe_image))
            tagged = dockernet.build(tmp_path, tag={kept!r})
            assert tagged == {kept!r}
            for name, image in (("u", untagged), ("t", tagged)):
                c = dockernet.container(name, image=image, command=["sleep", "600"])
                assert c.exec(["cat", "/greeting.txt"]) == (0, "hi\\n")
            with open({str(refs)!r}, "w") as f:
                f.write(untagged)

        def test_again_in_another_test(dockernet, tmp_path):
            assert dockernet.build(context(tmp_path, dockernet.probe_image)) == open({str(refs)!r}).read()
        """
    )
    try:
        result = inner_runs.run_subprocess()
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(["*- dockernet -*", "time: *; made: *2 image builds*"])
        untagged = refs.read_text()
        (run_id,) = inner_runs.run_ids()
        assert untagged.endswith(f"-{run_id}")
        assert not image_exists(dockernet_client, untagged)  # removed at the end of the run
        labels = dockernet_client.api.inspect_image(kept)["Config"]["Labels"]
        assert labels["pytest-dockernet.role"] == "tagged-build"
        assert "pytest-dockernet.session" not in labels  # nothing prunes it

        # The next run builds it again (once per run); the image the tag moved from goes.
        first = dockernet_client.api.inspect_image(kept)["Id"]
        inner_runs.run_subprocess().assert_outcomes(passed=2)
        assert image_exists(dockernet_client, kept)
        assert dockernet_client.api.inspect_image(kept)["Id"] != first
        assert not image_exists(dockernet_client, first)
    finally:
        try:
            dockernet_client.api.remove_image(kept)
        except docker.errors.ImageNotFound:
            pass


def test_xdist_workers_build_the_same_context_once(inner_runs, pytester, dockernet_client):
    refs = pytester.path / "refs"
    token = uuid.uuid4().hex
    pytester.makepyfile(
        f"""
        import os
        import pytest

        @pytest.mark.parametrize("i", range(4))
        def test_builds(dockernet, tmp_path, i):
            # Each test writes the same files into its own directory: one content, one build.
            (tmp_path / "Dockerfile").write_text(
                f"FROM {{dockernet.probe_image}}\\nCOPY greeting.txt /greeting.txt\\n"
            )
            (tmp_path / "greeting.txt").write_text({token!r})
            image = dockernet.build(tmp_path)
            c = dockernet.container("app", image=image, command=["sleep", "600"])
            assert c.exec(["cat", "/greeting.txt"]) == (0, {token!r})
            with open({str(refs)!r}, "a") as f:
                f.write(f"{{os.environ['PYTEST_XDIST_WORKER']}} {{dockernet.context.identity.run_id}} {{image}}\\n")
        """
    )
    result = inner_runs.run_subprocess("-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=4)
    result.stdout.re_match_lines([r"time \(summed over 2 workers\): .*; made: (.*, )?1 image build(,|$)"])
    lines = [line.split() for line in refs.read_text().splitlines()]
    assert {worker for worker, _, _ in lines} == {"gw0", "gw1"}
    (image,) = {image for _, _, image in lines}
    # Named for the run's controller, which outlives the workers and removed it at its end.
    workers = {run_id for _, run_id, _ in lines}
    (controller,) = set(inner_runs.run_ids()) - workers
    assert image.endswith(f"-{controller}")
    assert not image_exists(dockernet_client, image)


BUILD_AND_SLEEP = """
    import time

    from inner_run_spy import HERE, ready, record

    def test_sleeps(dockernet, tmp_path):
        (tmp_path / "Dockerfile").write_text(f"FROM {dockernet.probe_image}\\nCOPY greeting.txt /greeting.txt\\n")
        (tmp_path / "greeting.txt").write_text("killed\\n")
        image = dockernet.build(tmp_path)
        record(dockernet.container("c", image=image, command=["sleep", "600"]))
        with open(HERE / "built", "w") as f:
            f.write(image)
        ready()
        time.sleep(60)
"""


def test_a_killed_runs_image_is_pruned_by_the_next_run(inner_runs, pytester, dockernet_client):
    pytester.makepyfile(test_sleeper=BUILD_AND_SLEEP)
    host = inner_runs.own_host()
    proc = inner_runs.start("test_sleeper.py", host=host)
    run_id = inner_runs.run_id_of(proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    image = (pytester.path / "built").read_text()
    assert image_exists(dockernet_client, image)  # SIGKILL: no teardown at all

    pytester.makepyfile(test_next="def test_next(dockernet): dockernet.network('n')")
    result = inner_runs.run_on(host, "test_next.py")
    result.assert_outcomes(passed=1)
    assert not image_exists(dockernet_client, image)
    assert inner_runs.resources(run_id) == []
    # Every run prunes dead runs when it starts, and other runs share this engine: one of them
    # may have taken it first. If this run did, it says so: the container went first (an image
    # a container uses cannot go), then the image.
    if f"image {image}" in result.stdout.str():
        result.stdout.fnmatch_lines(
            [
                f"removed * container* and * network* left by * dead run* (*{run_id}*); "
                "removed * image* that build() made for dead runs",
                f"  container {inner_runs.made()[0]}",
                f"  image {image}",
            ]
        )


def test_target_labels_inline_dockerfile_and_network(dockernet, dockernet_client, tmp_path, builder):
    """A multi-stage build stops at its target; labels reach the image; an inline Dockerfile
    builds with the context's files; each is part of the build's key."""
    context = make_context(tmp_path / "ctx", dockernet.probe_image, f"staged {uuid.uuid4().hex}")
    staged = (context / "greeting.txt").read_text()
    (context / "Dockerfile").write_text(
        f"FROM {dockernet.probe_image} AS base\nCOPY greeting.txt /greeting.txt\n"
        "FROM base AS test\nRUN echo test > /test-stage.txt\n"
        "FROM base AS final\nRUN echo final > /final-stage.txt\n"
    )
    before = builds(dockernet)
    test_image = dockernet.build(context, target="test", labels={"team": "api"}, network="none")
    final_image = dockernet.build(context)
    assert test_image != final_image
    container = dockernet.container("t", image=test_image, command=["sleep", "600"])
    assert container.exec(["cat", "/greeting.txt", "/test-stage.txt"]) == (0, f"{staged}test\n")
    assert container.exec(["test", "-e", "/final-stage.txt"])[0] == 1  # the later stage is not in it
    labels = dockernet_client.api.inspect_image(test_image)["Config"]["Labels"]
    assert labels["team"] == "api"
    assert labels["pytest-dockernet.role"] == "build"  # the run's: removed at its end
    print(f"builder: {labels['pytest-dockernet.builder']}")
    if builder == "legacy":
        assert labels["pytest-dockernet.builder"] == "legacy"
    assert dockernet.build(context, target="test", labels={"team": "api"}, network="none") == test_image
    assert dockernet.build(context, target="test", labels={"team": "web"}, network="none") != test_image

    inline = f"FROM {dockernet.probe_image}\nCOPY greeting.txt /inline.txt\n"
    inline_image = dockernet.build(context, dockerfile_inline=inline, cache_from=[final_image])
    assert dockernet.build(context, dockerfile_inline=inline) == inline_image  # cache_from is not in the key
    assert dockernet.build(context, dockerfile_inline=inline + "ENV X=1\n") != inline_image
    assert greeting_in(dockernet, "i", final_image) == staged.strip()
    code, output = dockernet.container("j", image=inline_image, command=["sleep", "600"]).exec(["cat", "/inline.txt"])
    assert (code, output) == (0, staged)
    assert builds(dockernet) == before + 5

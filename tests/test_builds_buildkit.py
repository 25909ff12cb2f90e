"""Builds with BuildKit (a docker CLI that has it, on the run's engine) and without it: a
Dockerfile that needs BuildKit, built where it is available and refused saying why where
not; a `# syntax=` frontend image that cannot be pulled; progress on the terminal; the
run's BuildKit images removed at its end; Compose's build keys."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

import docker.errors
import pytest

from pytest_dockernet import ComposeError, DockernetError
from pytest_dockernet.buildkit import USUAL_PLACES, candidates, cli_environment, find_client
from pytest_dockernet.builds import builder
from pytest_dockernet.dockerfile_needs import buildkit_needs, syntax_image

BUILDKIT_ONLY = """\
FROM {image}
RUN --mount=type=cache,target=/cache echo {token} > /cache/seen && cp /cache/seen /seen.txt
COPY --chmod=600 greeting.txt /secret.txt
"""


def context_with(where: Path, dockerfile: str, greeting: str = "hello") -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "Dockerfile").write_text(dockerfile)
    (where / "greeting.txt").write_text(greeting + "\n")
    return where


def image_labels(client, ref: str) -> dict[str, str]:
    return client.api.inspect_image(ref)["Config"]["Labels"] or {}


def image_exists(client, ref: str) -> bool:
    try:
        client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_a_dockerfile_that_needs_buildkit_is_built_with_it_where_the_run_has_it(dockernet, dockernet_client, tmp_path):
    token = uuid.uuid4().hex
    context = context_with(tmp_path / "ctx", BUILDKIT_ONLY.format(image=dockernet.probe_image, token=token))
    client, why = builder(dockernet.context)
    # CI shows which: BuildKit here (Debian's 20.10 docker CLI), the refusal where no CLI has it.
    print(f"builder: {client if client is not None else f'legacy ({why})'}")
    if client is None:
        with pytest.raises(DockernetError, match=r"the Dockerfile needs BuildKit \(line 2: RUN --mount; line 3: COPY"):
            dockernet.build(context)
        return
    image = dockernet.build(context)
    assert image_labels(dockernet_client, image)["pytest-dockernet.builder"] == "buildkit"
    container = dockernet.container("app", image=image, command=["sleep", "600"])
    assert container.exec(["cat", "/seen.txt"]) == (0, f"{token}\n")
    assert container.exec(["stat", "-c", "%a", "/secret.txt"]) == (0, "600\n")


def test_without_buildkit_such_a_dockerfile_is_refused_naming_the_lines(inner_runs, pytester):
    pytester.makepyfile(
        test_inner=f"""
        import pytest
        from pytest_dockernet import DockernetError

        DOCKERFILE = {BUILDKIT_ONLY!r} + "RUN <<EOF\\necho heredoc > /h\\nEOF\\n"

        def test_refused(dockernet, tmp_path):
            (tmp_path / "Dockerfile").write_text(DOCKERFILE.format(image=dockernet.probe_image, token="t"))
            (tmp_path / "greeting.txt").write_text("hi")
            with pytest.raises(DockernetError) as refused:
                dockernet.build(tmp_path)
            print("REFUSED:", refused.value)
        """
    )
    result = inner_runs.run_subprocess("--dockernet-builder", "legacy", "-s")
    result.assert_outcomes(passed=1)
    (line,) = [line.partition("REFUSED: ")[2] for line in result.outlines if "REFUSED: " in line]
    assert "the Dockerfile needs BuildKit (line 2: RUN --mount; line 3: COPY --chmod; line 4: a heredoc in RUN" in line
    assert "this run builds with the legacy builder: --dockernet-builder is 'legacy'" in line
    assert "put a docker CLI with BuildKit on PATH" in line
    assert "`docker buildx version` works" in line
    assert "# syntax=docker/dockerfile:1" in line  # what a heredoc needs beyond BuildKit
    assert "image build" not in result.stdout.str()  # refused before anything was built


def test_a_syntax_line_whose_frontend_cannot_be_pulled_says_so(dockernet, dockernet_client, tmp_path):
    context = context_with(tmp_path / "ctx", f"# syntax=docker/dockerfile:1\nFROM {dockernet.probe_image}\n")
    if builder(dockernet.context)[0] is None:  # the legacy builder ignores the line, as docker build does
        image = dockernet.build(context)
        assert image_labels(dockernet_client, image)["pytest-dockernet.builder"] == "legacy"
        return
    with pytest.raises(DockernetError) as failed:
        dockernet.build(context)
    message = str(failed.value)
    assert "line 1 `# syntax=docker/dockerfile:1` makes BuildKit load its Dockerfile frontend from the image" in message
    assert "which is not on the engine and cannot be pulled (" in message
    assert "or remove the line to use the engine's built-in frontend" in message


def test_a_heredoc_the_engines_frontend_lacks_gets_a_hint(dockernet, tmp_path):
    dockerfile = f"FROM {dockernet.probe_image}\nRUN <<EOF\necho heredoc > /h\nEOF\n"
    context = context_with(tmp_path / "ctx", dockerfile)
    if builder(dockernet.context)[0] is None:
        with pytest.raises(DockernetError, match=r"needs BuildKit \(line 2: a heredoc in RUN \(<<EOF\)\)"):
            dockernet.build(context)
        return
    try:
        image = dockernet.build(context)
    except DockernetError as exc:  # Docker 20.10's built-in frontend: no heredocs
        assert "line 2: a heredoc in RUN (<<EOF): the engine's built-in Dockerfile frontend may lack this" in str(exc)
        assert "a first line `# syntax=docker/dockerfile:1` loads a newer one" in str(exc)
    else:  # a newer engine's frontend has them
        code, output = dockernet.container("h", image=image, command=["sleep", "600"]).exec(["cat", "/h"])
        assert (code, output) == (0, "heredoc\n")


@pytest.mark.parametrize(
    ("dockerfile", "needs"),
    [
        ("FROM a\nCOPY --chown=1:1 --from=b x y\nRUN echo '<<' ok\n", []),
        ("FROM a\nRUN --mount=type=cache,target=/c \\\n  --mount=type=secret,id=x make\n", ["line 2: RUN --mount"]),
        ("FROM a\nADD --chmod=644 --link x y\n", ["line 2: ADD --chmod", "line 2: ADD --link"]),
        ("FROM a\nCOPY <<-EOF /x\n  RUN --mount=not-an-instruction\nEOF\n", ["line 2: a heredoc in COPY (<<-EOF)"]),
        ("# escape=`\n# syntax=img\nFROM a\nrun --network=none true\n", ["line 4: RUN --network"]),
    ],
)
def test_what_needs_buildkit_is_read_from_the_dockerfile(dockerfile, needs):
    assert [str(need) for need in buildkit_needs(dockerfile)] == needs
    assert syntax_image("# escape=`\n# syntax=img:1\nFROM a\n") == (2, "img:1")
    assert syntax_image("FROM a\n# syntax=img:1\n") is None  # a comment once an instruction came


def test_the_cli_is_pointed_at_the_runs_engine():
    environ = {"DOCKER_CONTEXT": "other", "DOCKER_TLS_VERIFY": "1", "PATH": "/bin"}
    unix = cli_environment("unix:///run/engine.sock", environ)
    assert (unix["DOCKER_HOST"], unix["DOCKER_BUILDKIT"], "DOCKER_CONTEXT" in unix) == (
        "unix:///run/engine.sock",
        "1",
        False,
    )
    assert cli_environment("https://10.0.0.2:2376", environ)["DOCKER_HOST"] == "tcp://10.0.0.2:2376"
    assert cli_environment("https://10.0.0.2:2376", environ)["DOCKER_TLS_VERIFY"] == "1"
    plain = cli_environment("http://10.0.0.2:2375", environ)
    assert (plain["DOCKER_HOST"], "DOCKER_TLS_VERIFY" in plain) == ("tcp://10.0.0.2:2375", False)
    assert cli_environment("", {"DOCKER_HOST": "ssh://me@box"})["DOCKER_HOST"] == "ssh://me@box"


def test_candidates_are_every_docker_on_path_then_the_usual_places(tmp_path):
    for directory in ("a", "b"):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "docker").write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / directory / "docker").chmod(0o755)
    (tmp_path / "c").mkdir()
    path = os.pathsep.join(str(tmp_path / d) for d in ("a", "c", "b"))
    found = candidates(path)
    assert found[:2] == [str(tmp_path / "a" / "docker"), str(tmp_path / "b" / "docker")]
    assert found[2:] == [p for p in USUAL_PLACES if os.path.isfile(p)]
    nothing = find_client("unix:///nonexistent.sock", path=os.pathsep.join(str(tmp_path / d) for d in ("a", "b")))
    assert nothing.client is None or nothing.client.path in USUAL_PLACES
    assert f"{tmp_path / 'a' / 'docker'}: exit status 1" in nothing.why_not()


def test_the_builder_option_takes_three_values(pytester):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--dockernet-builder", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--dockernet-builder (ini dockernet_builder) is 'fast': use one of auto, buildkit, legacy*"]
    )


SLOW_BUILD = """
    def test_builds(dockernet, tmp_path):
        (tmp_path / "Dockerfile").write_text(
            f"FROM {dockernet.probe_image}\\nRUN sleep 3 && echo {token} > /one\\nRUN sleep 2\\n"
        )
        image = dockernet.build(tmp_path)
        with open("built", "w") as f:
            f.write(image)
"""


@pytest.mark.parametrize("builder_option", ["auto", "buildkit", "legacy"])
def test_a_long_build_shows_progress_unless_quiet_and_its_image_goes_with_the_run(
    inner_runs, pytester, dockernet_client, builder_option
):
    pytester.makepyfile(textwrap.dedent(SLOW_BUILD).replace("{token}", uuid.uuid4().hex))
    result = inner_runs.run_subprocess("--dockernet-builder", builder_option, timeout=180)
    result.assert_outcomes(passed=1)
    print(result.stdout.str())
    result.stdout.re_match_lines(
        [
            # (The legacy builder counts a LABEL step per label given with the build.)
            r"dockernet: building test_builds0 \(step 2/\d+: RUN sleep 3 && echo \w+ > /one\) \d+ s \.\.\.",
            r"dockernet: building test_builds0 \(step 3/\d+: RUN sleep 2\) \d+ s \.\.\.",
            r"dockernet: built test_builds0 in \d+\.\d s",
        ]
    )
    counted = "legacy build" if builder_option == "legacy" else "BuildKit build"
    result.stdout.fnmatch_lines([f"time: *; made: *1 {counted}*"])
    image = (pytester.path / "built").read_text()
    assert not image_exists(dockernet_client, image)  # the run's: removed at its end

    quiet = inner_runs.run_subprocess("--dockernet-builder", builder_option, "-q", timeout=180)
    quiet.assert_outcomes(passed=1)
    assert "dockernet: build" not in quiet.stdout.str()


def test_compose_build_keys(dockernet, dockernet_client, tmp_path):
    """target, args, labels (list and mapping), dockerfile_inline and network of Compose's
    build: reach the image."""
    token = uuid.uuid4().hex
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "greeting.txt").write_text(f"{token}\n")
    (tmp_path / "app" / "Dockerfile").write_text(
        f"FROM {dockernet.probe_image} AS base\nARG FLAVOUR=plain\nCOPY greeting.txt /greeting.txt\n"
        'RUN echo "$FLAVOUR" > /flavour.txt\n'
        "FROM base AS test\nRUN echo test > /stage.txt\n"
        "FROM base AS prod\nRUN echo prod > /stage.txt\n"
    )
    inline = f"FROM {dockernet.probe_image}\\nCOPY greeting.txt /inline.txt\\n"
    (tmp_path / "compose.yaml").write_text(
        textwrap.dedent(
            f"""
            services:
              api:
                build:
                  context: app
                  target: test
                  args: [FLAVOUR=spicy]
                  labels: [com.example.team=api]
                  network: none
                command: ["sleep", "600"]
              worker:
                build:
                  context: ./app
                  dockerfile_inline: "{inline}"
                  labels: {{com.example.team: worker}}
                  cache_from: [{dockernet.probe_image}]
                  no_cache: true
                command: ["sleep", "600"]
            """
        )
    )
    with pytest.warns(UserWarning, match=r"services\.worker\.build\.no_cache \(the image is built once per run"):
        stack = dockernet.compose(tmp_path / "compose.yaml")
    api, worker = stack["api"], stack["worker"]
    assert api.exec(["cat", "/greeting.txt", "/flavour.txt", "/stage.txt"]) == (0, f"{token}\nspicy\ntest\n")
    assert worker.exec(["cat", "/inline.txt"]) == (0, f"{token}\n")
    assert worker.exec(["test", "-e", "/stage.txt"])[0] == 1
    api_image = dockernet_client.api.inspect_container(api.docker_name)["Config"]["Image"]
    assert image_labels(dockernet_client, api_image)["com.example.team"] == "api"
    worker_image = dockernet_client.api.inspect_container(worker.docker_name)["Config"]["Image"]
    assert image_labels(dockernet_client, worker_image)["com.example.team"] == "worker"


@pytest.mark.parametrize(
    ("build", "match"),
    [
        ("network: backend", r"build\.network: 'backend' cannot be used by a build: the image is built before"),
        (
            "ssh: [default]",
            r"key 'ssh' of build is not supported by pytest-dockernet's compose\(\): the plugin forwards",
        ),
        ("platforms: [linux/arm64]", r"key 'platforms' of build is not supported .*: an image is built for the engine"),
        ("context: https://github.com/docker/app.git", r"is a remote context, which the plugin does not fetch"),
        ("dockerfile_inline: 'FROM x'\n      dockerfile: Dockerfile", r"dockerfile and dockerfile_inline exclude"),
        ("labels: [=x]", r"build\.labels\[0\] must be 'KEY=VALUE' or 'KEY'"),
    ],
)
def test_compose_build_keys_refused_with_the_reason(dockernet, tmp_path, build, match):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "compose.yaml").write_text(f"services:\n  api:\n    build:\n      {build}\n")
    with pytest.raises(ComposeError, match=match):
        dockernet.compose(tmp_path / "compose.yaml")

"""What a user can set for a run (command-line options, each also an ini key), and checking it.

Every bad value is a ``pytest.UsageError`` that names the option, the ini key and the
values it takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .buildkit import BUILDERS
from .container_options import DNS_MODES
from .handles import check_host_address
from .image import DEFAULT_IMAGE
from .subnets import DEFAULT_RANGE, parse_subnet_range

TEARDOWN_MODES = ("background", "wait")
SWARM_MODES = ("never", "auto")
DEFAULT_LOG_LINES = 50
WARM_POOL = 4  # running probe-image containers a process keeps for container() (see warm_pool.py)
MAX_WARM_POOL = 32
MAX_KEEP_WARM = 3600  # seconds the warm pool may outlive its run (see keep_warm.py)


def _integer(value: str) -> tuple[str, int]:
    """The option's text, and its value as an integer (-1 when it is not one)."""
    text = str(value).strip()
    try:
        return text, int(text)
    except ValueError:
        return text, -1


def _lab_size(value: str) -> int:
    text, size = _integer(value)
    if size == 0:
        return 0
    from .lab import MAX_ENGINES  # here: only a run that asks for a lab imports it

    if not 2 <= size <= MAX_ENGINES:
        raise pytest.UsageError(
            f"--dockernet-lab (ini dockernet_lab) is {text!r}: give the number of engines, 2 to {MAX_ENGINES} "
            "(engine 0 plus N-1 in network namespaces), or 0 for no lab"
        )
    return size


def _pool_size(value: str) -> int:
    text, size = _integer(value)
    if not 0 <= size <= MAX_WARM_POOL:
        raise pytest.UsageError(
            f"--dockernet-pool (ini dockernet_pool) is {text!r}: give the number of warm containers to keep "
            f"ready, 0 to {MAX_WARM_POOL} (0 turns the pool off)"
        )
    return size


def _keep_warm(value: str) -> int:
    text, seconds = _integer(value)
    if not 0 <= seconds <= MAX_KEEP_WARM:
        raise pytest.UsageError(
            f"--dockernet-keep-warm (ini dockernet_keep_warm) is {text!r}: give the seconds the warm pool's "
            f"idle containers and networks may wait on the engine after the run for the next run to adopt, "
            f"0 to {MAX_KEEP_WARM} (0 turns it off)"
        )
    return seconds


def _log_lines(value: str) -> int:
    text, lines = _integer(value)
    if lines < 0:
        raise pytest.UsageError(
            f"--dockernet-logs (ini dockernet_logs) is {text!r}: give the number of log lines a failing "
            "test's report shows per container, or 0 for no log sections"
        )
    return lines


def _artifacts(config: pytest.Config) -> Path | None:
    """--dockernet-artifacts from the current directory, or ini dockernet_artifacts from the
    ini file's (the rootdir's without one); None when neither is set."""
    given, base = config.getoption("dockernet_artifacts"), config.invocation_params.dir
    if given is None:
        given, base = config.getini("dockernet_artifacts"), config.inipath.parent if config.inipath else config.rootpath
    if not str(given).strip():
        return None
    folder = (base / str(given).strip()).resolve()
    if folder.exists() and not folder.is_dir():
        raise pytest.UsageError(
            f"--dockernet-artifacts (ini dockernet_artifacts) is {str(given)!r}: {folder} is a file; "
            "name a folder (made when a test first fails)"
        )
    return folder


def _host_address(value: str) -> str:
    try:
        return check_host_address(value)
    except ValueError as exc:
        raise pytest.UsageError(
            f"--dockernet-host-address (ini dockernet_host_address): {exc}, or leave it unset for the engine's host"
        ) from None


def _seed(value: str) -> int | None:
    text, number = _integer(value)
    if not text:
        return None
    if number < 0:
        raise pytest.UsageError(
            f"--dockernet-seed (ini dockernet_seed) is {text!r}: give a whole number 0 or more, as a failing "
            "test's report prints it"
        )
    return number


def add_options(parser: pytest.Parser) -> None:
    """The dockernet option group, and an ini key per option."""
    group = parser.getgroup("dockernet", "Docker network tests (pytest-dockernet)")

    def option(
        name: str, help: str, *, flag: bool = False, default: str = "", shown: str = "", metavar: str = ""
    ) -> None:
        dest = "dockernet_" + name.replace("-", "_")
        if flag:
            group.addoption(f"--dockernet-{name}", action="store_true", default=None, dest=dest, help=help)
            parser.addini(dest, help, type="bool", default=False)
        else:
            help = f"{help} (default: {shown or default})"
            group.addoption(f"--dockernet-{name}", default=None, dest=dest, metavar=metavar, help=help)
            parser.addini(dest, help, default=default)

    option(
        "image",
        "image for probes and default containers; built from a static busybox when it is neither present nor pullable",
        default=DEFAULT_IMAGE,
        metavar="IMAGE",
    )
    option(
        "busybox", "static busybox binary to build the probe image from", shown="the busybox on PATH", metavar="PATH"
    )
    option(
        "fault-image",
        "image the fault helpers run (partition(), degrade()): it must have iptables, ip6tables, tc and a "
        "POSIX sh; checked once per run and engine",
        shown="built from this machine's iptables and tc, else FROM alpine with apk",
        metavar="IMAGE",
    )
    option("require", "error instead of skipping dockernet tests when Docker is unavailable", flag=True)
    option(
        "dns",
        "'hermetic': names no container provides fail at once inside the engine; "
        "'host': Docker forwards them to the host's resolvers",
        default="hermetic",
        metavar="MODE",
    )
    option(
        "logs",
        "a failing test's report shows the last N lines of each of its containers' logs; 0: no log "
        "sections (containers that are not running are still named, with their last lines)",
        default=str(DEFAULT_LOG_LINES),
        metavar="N",
    )
    option(
        "capture",
        "record each test's traffic on every network of its topology (a tcpdump sidecar per network, "
        "the last 4-5 MB); a failing test keeps it as <network>.pcap in its artifacts folder and its report "
        "gains a flow summary; also per test: @pytest.mark.dockernet(capture=True)",
        flag=True,
    )
    option("keep", "after a failure, keep that test's networks and containers and say how to remove them", flag=True)
    option(
        "teardown",
        "'background': a test's own networks and containers are removed while the next test sets up, "
        "and what is left after the summary (the warm pool, the last test's, the run's lease) by a "
        "detached process after pytest exits (not under CI); 'wait': before the test's teardown ends, "
        "and all of it before pytest exits",
        default="background",
        metavar="MODE",
    )
    option(
        "swarm",
        "'never': overlay tests are skipped (an error under --dockernet-require); 'auto': make a "
        "single-node swarm for the run when the engine is in none, and leave it at the end unless "
        "that would break the names of containers on the engine",
        default="never",
        metavar="MODE",
    )
    option(
        "hosts",
        "further Docker engines of the same swarm, comma-separated (engine 0 is the environment's)",
        shown="none",
        metavar="URL[,URL...]",
    )
    option(
        "lab",
        "start a lab of N Docker engines on this machine (Linux, root) for the run: a swarm of "
        "engine 0 and N-1 engines in network namespaces",
        default="0",
        metavar="N",
    )
    option(
        "pool",
        "keep N probe-image containers running and hand them to container() calls that ask for nothing "
        "of their own (a network join instead of a start; used again by later tests); 0 turns the pool off",
        default=str(WARM_POOL),
        metavar="N",
    )
    option(
        "keep-warm",
        "the warm pool's idle containers and empty networks outlive the run by up to SECONDS on the engine, "
        "for the next run with the same probe image, plugin version, DNS mode and subnet pool to adopt "
        "(a join instead of a start in its first test); 0 turns it off",
        default="0",
        metavar="SECONDS",
    )
    option(
        "artifacts",
        "write, for each failing test, a folder named after its node id in DIR with its topology as "
        "topology.svg and topology.json, each container's full log and timeline.txt (what the plugin did, "
        "in seconds from the start of the test's call phase); a relative DIR is taken from the current "
        "directory (from the ini file's for the ini key)",
        shown="none",
        metavar="DIR",
    )
    # A command, not a setting: no ini key (one would turn every run into this command).
    group.addoption(
        "--dockernet-capabilities",
        action="store_true",
        default=False,
        dest="dockernet_capabilities",
        help="probe the engine (and each of --dockernet-hosts) afresh, print which capabilities it has and "
        "which it lacks and why, and exit without running tests",
    )
    option(
        "prune",
        "remove resources left by dead (killed) runs, report them, and exit (1 if the engine refused to remove some)",
        flag=True,
    )
    option(
        "host-address",
        "host name or address where the test process reaches the ports containers publish "
        "(container.endpoint()), e.g. a gateway's or a port forward's",
        shown="the host of DOCKER_HOST for a tcp:// or ssh:// engine, else the binding's address or 127.0.0.1",
        metavar="ADDRESS",
    )
    option(
        "builder",
        "how build() and Compose's build: build images: 'auto': with BuildKit where a docker CLI on PATH (or "
        "in the usual places) has it on the engine, else with the legacy builder; 'buildkit': BuildKit or an "
        "error; 'legacy': the engine's legacy builder (a Dockerfile that needs BuildKit fails saying so)",
        default="auto",
        metavar="BUILDER",
    )
    option(
        "seed",
        "base seed of the tests' nemeses (dockernet.nemesis() without seed=): the k-th nemesis of a test "
        "draws from N + k - 1, so a failing test's report gives the N that replays it",
        shown="a random one per test",
        metavar="N",
    )
    option(
        "subnet-pool",
        "private range the networks' subnets come from, as CIDR or CIDR:PREFIXLEN",
        default=f"{DEFAULT_RANGE}:24",
        metavar="CIDR",
    )


@dataclass
class Settings:
    image: str
    busybox: str | None
    require: bool
    dns: str
    keep: bool
    prune: bool
    subnet_pool: str
    capabilities: bool = False
    teardown: str = "background"
    swarm: str = "never"
    hosts: tuple[str, ...] = ()
    lab: int = 0
    logs: int = DEFAULT_LOG_LINES  # log lines per container in a failing test's report
    artifacts: Path | None = None  # where failing tests' artifacts go (see artifacts.py); None: nowhere
    pool: int = WARM_POOL  # warm containers kept ready (0: none)
    keep_warm: int = 0  # seconds the pool outlives the run for the next to adopt (0: off; see keep_warm.py)
    fault_image: str | None = None  # the fault helpers' image (None: faults/image.py's order)
    host_address: str = ""  # where published ports are reached ("": found per engine, see handles.published_host)
    builder: str = "auto"  # auto | buildkit | legacy (see builds.builder)
    capture: bool = False  # record every test's traffic (see capture.py); the marker's capture= per test
    seed: int | None = None  # the nemeses' base seed (see nemesis.py); None: one drawn per test

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        def get(name: str) -> Any:  # a str, or a bool for the flags
            value = config.getoption("dockernet_" + name)
            if value is not None:
                return value
            try:
                return config.getini("dockernet_" + name)
            except (ValueError, pytest.UsageError) as exc:  # a yes/no key with another value (UsageError: pytest 9.2)
                raise pytest.UsageError(f"ini dockernet_{name}: {exc}; use true or false") from None

        busybox = get("busybox")
        settings = cls(
            image=get("image").strip(),
            busybox=busybox or None,
            require=bool(get("require")),
            dns=get("dns").strip(),
            keep=bool(get("keep")),
            prune=bool(get("prune")),
            capabilities=bool(config.getoption("dockernet_capabilities")),
            subnet_pool=get("subnet_pool").strip(),
            teardown=get("teardown").strip(),
            swarm=get("swarm").strip(),
            hosts=tuple(h.strip() for h in get("hosts").split(",") if h.strip()),
            lab=_lab_size(get("lab")),
            logs=_log_lines(get("logs")),
            artifacts=_artifacts(config),
            pool=_pool_size(get("pool")),
            keep_warm=_keep_warm(get("keep_warm")),
            fault_image=get("fault_image").strip() or None,
            host_address=_host_address(get("host_address")),
            builder=get("builder").strip(),
            capture=bool(get("capture")),
            seed=_seed(get("seed")),
        )
        if settings.builder not in BUILDERS:
            raise pytest.UsageError(
                f"--dockernet-builder (ini dockernet_builder) is {settings.builder!r}: use one of {', '.join(BUILDERS)}"
            )
        if settings.swarm not in SWARM_MODES:
            raise pytest.UsageError(
                f"--dockernet-swarm (ini dockernet_swarm) is {settings.swarm!r}: use one of {', '.join(SWARM_MODES)}"
            )
        for host in settings.hosts:
            if "://" not in host:
                raise pytest.UsageError(
                    f"--dockernet-hosts (ini dockernet_hosts): {host!r} is not an engine URL such as "
                    "unix:///run/engine1.sock or tcp://10.0.0.2:2375"
                )
        if settings.lab and settings.hosts:
            raise pytest.UsageError(
                "--dockernet-lab and --dockernet-hosts exclude each other: the lab names its own engines"
            )
        if settings.teardown not in TEARDOWN_MODES:
            raise pytest.UsageError(
                f"--dockernet-teardown (ini dockernet_teardown) is {settings.teardown!r}: "
                f"use one of {', '.join(TEARDOWN_MODES)}"
            )
        if settings.dns not in DNS_MODES:
            raise pytest.UsageError(
                f"--dockernet-dns (ini dockernet_dns) is {settings.dns!r}: use one of {', '.join(DNS_MODES)}"
            )
        if not settings.image:
            raise pytest.UsageError(
                "--dockernet-image (ini dockernet_image) is empty: name an image such as busybox:stable"
            )
        try:
            parse_subnet_range(settings.subnet_pool)
        except ValueError as exc:
            raise pytest.UsageError(f"--dockernet-subnet-pool (ini dockernet_subnet_pool): {exc}") from None
        return settings

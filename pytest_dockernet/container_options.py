"""The container options that go to the engine as the user wrote them, checked first:
``volumes``, ``healthcheck``, ``labels``, ``user``, ``working_dir``, ``hostname`` and
``docker_options`` (anything else docker-py's ``containers.create`` takes).

Each check raises before anything is made, naming the argument and how to fix it.

- ``volumes``: ``{"/host/path": {"bind": "/in", "mode": "ro"}}`` or
  ``["/host/path:/in:ro", "name:/data", "/scratch"]``; host paths are absolute paths on the
  engine's machine; a named volume that does not exist is made and removed with the
  topology, an existing one is the user's and stays.
- ``healthcheck``: docker-py's dict (``test``, ``interval``, ``timeout``, ``retries``,
  ``start_period``); durations in seconds (below 1,000,000), docker-py's nanoseconds, or
  ``"500ms"``.
- ``labels``: merged with the plugin's own, whose keys cannot be set.
- ``docker_options``: passed to the engine as ``containers.create`` takes it (e.g.
  ``{"mem_limit": "64m"}``); keys the plugin manages (``name``, ``network``,
  ``labels``, ...) and ``container()``'s own arguments are refused.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .engine.errors import EngineException
from .labels import PREFIX

if TYPE_CHECKING:
    from .engine.port import Engine

# docker_options keys that are arguments of container() itself: pass them there.
_OWN_ARGUMENTS = (
    "image command entrypoint environment user working_dir hostname volumes healthcheck ports links cap_add privileged"
).split()
# What the plugin manages, and why a test cannot set it through docker_options.
_MANAGED = {
    "name": "the plugin names containers uniquely per run (the logical name is container()'s first argument)",
    "labels": "pass labels= to container() (merged with the plugin's own)",
    "network": "pass networks= (or network_mode=) to container()",
    "network_mode": "pass network_mode= to container()",
    "networking_config": "pass networks={net: {'aliases': [...], 'ipv4_address': ...}} to container()",
    "network_disabled": "pass network_mode='none' to container()",
    "detach": "containers always start detached",
    "stdin_open": "the plugin decides it (the resident probe shell reads its stdin); only True is taken, which "
    "keeps the stdin of the container's command open",
    "auto_remove": "the plugin removes containers itself, and keeps a crashed one until teardown for its report",
    "remove": "the plugin removes containers itself at teardown",
    "dns": "pass dns= to container() (hermetic DNS decides which servers are used)",
    "dns_opt": "pass dns_opt= to container() (merged with the plugin's hermetic DNS options)",
    "dns_search": "pass dns_search= to container() (in place of the plugin's hermetic search list)",
    "stop_timeout": "pass stop_timeout= to container() (Container.stop() and restart() wait that long)",
    "version": "the plugin talks to the engine with its own client",
}
_HEALTH_KEYS = ("test", "interval", "timeout", "retries", "start_period")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h)\s*$")
_UNITS = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")
_MODES = re.compile(
    r"^(ro|rw|z|Z|nocopy|shared|slave|private|rshared|rslave|rprivate|delegated|cached|consistent)(,(ro|rw|z|Z|nocopy|shared|slave|private|rshared|rslave|rprivate|delegated|cached|consistent))*$"
)


@dataclass
class Volumes:
    """What ``volumes=`` asks of the engine."""

    binds: list[str] = field(default_factory=list)  # "source:/in:mode", for the host config
    paths: list[str] = field(default_factory=list)  # the mount points, for the container config
    named: list[str] = field(default_factory=list)  # named volumes (made by the plugin if missing)


def check_volumes(value: object) -> Volumes:
    """docker-py's forms: ``{"/host": {"bind": "/in", "mode": "ro"}}`` or
    ``["/host:/in:ro", "name:/data", "/anonymous"]``; sources are absolute host paths
    (on the engine's machine) or volume names."""
    volumes = Volumes()
    if value is None:
        return volumes
    example = "{'/host/path': {'bind': '/in', 'mode': 'ro'}} or ['/host/path:/in:ro', 'name:/data']"
    if isinstance(value, Mapping):
        entries = []
        for source, spec in value.items():
            if not isinstance(spec, Mapping) or not isinstance(spec.get("bind"), str) or set(spec) - {"bind", "mode"}:
                raise TypeError(
                    f"volumes[{source!r}] must be {{'bind': '/path/inside', 'mode': 'ro' or 'rw'}}, got {spec!r}"
                )
            entries.append((source, spec["bind"], spec.get("mode", "rw")))
    elif isinstance(value, (list, tuple)):
        entries = []
        for entry in value:
            if not isinstance(entry, str) or not entry:
                raise TypeError(f"volumes: each entry must be a string like '/host/path:/in:ro', got {entry!r}")
            parts = entry.split(":")
            if len(parts) == 1:
                entries.append((None, parts[0], "rw"))
            elif len(parts) in (2, 3):
                entries.append((parts[0], parts[1], parts[2] if len(parts) == 3 else "rw"))
            else:
                raise ValueError(f"volumes: {entry!r} is not 'source:/path/inside[:mode]'")
    else:
        raise TypeError(f"volumes must be a dict or a list, e.g. {example}; got {value!r}")
    for source, inside, mode in entries:
        where = f"volumes: {source + ':' if source else ''}{inside}"
        if not isinstance(inside, str) or not inside.startswith("/"):
            raise ValueError(f"{where}: the path inside the container must be absolute, e.g. '/data'")
        if not isinstance(mode, str) or not _MODES.match(mode):
            raise ValueError(f"{where}: mode {mode!r} is not one of 'ro', 'rw' (optionally with z, Z, nocopy, ...)")
        volumes.paths.append(inside)
        if source is None:
            continue  # an anonymous volume: removed with the container
        if not isinstance(source, str) or not source:
            raise TypeError(f"volumes: the source {source!r} must be a host path or a volume name")
        if not source.startswith("/"):
            if not _VOLUME_NAME.match(source):
                raise ValueError(
                    f"{where}: {source!r} is neither an absolute host path nor a volume name "
                    "(host paths must be absolute: use os.path.abspath() or Path.resolve())"
                )
            volumes.named.append(source)
        volumes.binds.append(f"{source}:{inside}:{mode}")
    return volumes


def _nanoseconds(key: str, value: object) -> int:
    """A healthcheck duration: seconds (a number below 1,000,000, which docker would refuse
    as nanoseconds), nanoseconds (docker-py's unit), or a string with a unit ("500ms")."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"healthcheck[{key!r}]={value!r} is not a duration such as 2, 0.5, '500ms' or '1m'")
        return int(float(match.group(1)) * _UNITS[match.group(2)])
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"healthcheck[{key!r}]={value!r} must be a duration: seconds (e.g. 1.5), or a string '500ms'")
    return int(value * 1e9) if value < 1_000_000 else int(value)


def check_healthcheck(value: object) -> dict[str, Any] | None:
    """docker-py's healthcheck dict, with durations in seconds accepted; ``test`` a shell
    command line (run with ``CMD-SHELL``) or an exec list (``["CMD", ...]``, ``["NONE"]``)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"healthcheck must be a dict such as {{'test': 'pg_isready', 'interval': 1}}, got {value!r}")
    unknown = sorted(set(value) - set(_HEALTH_KEYS))
    if unknown:
        raise ValueError(f"healthcheck has unknown keys {unknown}: use {', '.join(_HEALTH_KEYS)}")
    test = value.get("test")
    if isinstance(test, str) and test.strip():
        test = ["CMD-SHELL", test]
    elif isinstance(test, (list, tuple)) and test and all(isinstance(t, str) for t in test):
        test = list(test)
        if test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            test = ["CMD", *test]
    else:
        raise ValueError(f"healthcheck['test'] must be a command line or a list of strings, got {test!r}")
    checked: dict[str, Any] = {"test": test}
    for key in ("interval", "timeout", "start_period"):
        if value.get(key) is not None:
            checked[key] = _nanoseconds(key, value[key])
    retries = value.get("retries")
    if retries is not None:
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"healthcheck['retries']={retries!r} must be a whole number, 0 or more")
        checked["retries"] = retries
    return checked


def check_labels(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError(f"labels must be a dict of str to str, got {value!r}")
    own = sorted(k for k in value if k.startswith(PREFIX + ".") or k == PREFIX)
    if own:
        raise ValueError(f"labels: {own} are the plugin's own keys (those starting with {PREFIX!r}): pick other keys")
    return dict(value)


def check_text(argument: str, value: object) -> str | None:
    """None or a non-empty string (user, working_dir, hostname)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{argument} must be a non-empty string, got {value!r}")
    return value


@dataclass
class DockerOptions:
    create: dict[str, Any] = field(default_factory=dict)  # for create_container
    host_config: dict[str, Any] = field(default_factory=dict)  # for create_host_config
    stdin_open: bool = False  # also for a container that does not run the resident probe shell


def check_docker_options(value: object, engine: Engine) -> DockerOptions:
    """Split ``docker_options`` the way docker-py's ``containers.create`` does, refusing
    what the plugin manages; the host config is tried out (no engine call) so that a bad
    value fails here, before anything is made."""
    options = DockerOptions()
    if value is None:
        return options
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"docker_options must be a dict of docker-py containers.create() arguments, got {value!r}")
    for key, item in value.items():
        if key in _OWN_ARGUMENTS:
            raise ValueError(f"docker_options[{key!r}]: pass {key}= to container() itself")
        if key == "stdin_open" and item is True:
            options.stdin_open = True
            continue
        if key in _MANAGED:
            raise ValueError(f"docker_options[{key!r}] is managed by the plugin: {_MANAGED[key]}")
        kind = engine.run_option(key)
        if kind == "host_config":
            options.host_config[key] = item
        elif kind == "create":
            options.create[key] = item
        else:
            raise ValueError(
                f"docker_options[{key!r}] is not an argument of docker-py's containers.create() "
                "(see https://docker-py.readthedocs.io/en/stable/containers.html)"
            )
    if options.host_config:
        try:
            engine.create_host_config(**options.host_config)
        except (TypeError, ValueError, EngineException) as exc:
            raise ValueError(f"docker_options: {exc}") from None
    return options


# ndots:1 makes the embedded DNS answer unknown single-label names itself instead of
# forwarding them; the loopback server means a dotted name that nobody here provides is
# never sent to the host's resolvers either (it times out locally).
HERMETIC_DNS: dict[str, Any] = {"dns": ["127.0.0.1"], "dns_opt": ["ndots:1"], "dns_search": ["."]}
DNS_MODES = ("hermetic", "host")  # --dockernet-dns, dns=: hermetic uses HERMETIC_DNS


@dataclass
class Resolver:
    """``dns=``, ``dns_search=`` and ``dns_opt=`` as given (checked)."""

    dns: list[str] | None = None
    dns_search: list[str] | None = None
    dns_opt: list[str] | None = None

    def settings(self, hermetic: bool) -> dict[str, Any]:
        """The host config's DNS settings: in hermetic mode the plugin's, the search list
        and options given taking their place (an option by its name: ``ndots:2`` replaces
        ``ndots:1``), and the servers given (checked to be the topology's own) in place of
        the loopback one; otherwise what was given, as given."""
        given = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if not hermetic:
            return given
        options = {o.split(":")[0]: o for o in [*HERMETIC_DNS["dns_opt"], *(self.dns_opt or [])]}
        return {
            "dns": self.dns or HERMETIC_DNS["dns"],
            "dns_search": self.dns_search or HERMETIC_DNS["dns_search"],
            "dns_opt": list(options.values()),
        }


def check_resolver(
    dns: object, dns_search: object, dns_opt: object, network_mode: str | None, hermetic: bool, subnets: Iterable[Any]
) -> Resolver:
    """``dns=`` (server addresses), ``dns_search=`` (domains), ``dns_opt=`` (resolver
    options): lists of strings. In hermetic DNS mode a server must be an address on one of
    the topology's networks (``subnets``: theirs, gateways excluded), where only the test's
    own containers answer, or a loopback one (the container itself): a lookup is never
    sent off the machine."""
    resolver = Resolver()
    for argument, value in (("dns", dns), ("dns_search", dns_search), ("dns_opt", dns_opt)):
        if value is None:
            continue
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{argument} must be a list of strings, e.g. {_DNS_EXAMPLES[argument]}, got {value!r}")
        for entry in value:
            if not isinstance(entry, str) or not entry or any(c.isspace() for c in entry):
                raise ValueError(f"{argument}: {entry!r} is not a {_DNS_EXAMPLES[argument]}-like value")
        setattr(resolver, argument, list(value))
    if resolver == Resolver():
        return resolver
    if network_mode == "host" or (network_mode or "").startswith("container:"):
        raise ValueError(
            f"dns, dns_search and dns_opt cannot be set for a container in another network namespace "
            f"(network_mode={network_mode!r}): it uses that namespace's resolver"
        )
    for server in resolver.dns or []:
        try:
            address = ipaddress.ip_address(server)
        except ValueError:
            raise ValueError(f"dns: {server!r} is not an IP address of a DNS server") from None
        if hermetic and not address.is_loopback and not any(address in hosts for hosts in subnets):
            raise ValueError(
                f"dns: {server} is neither a loopback address nor one on this topology's networks: in hermetic "
                "DNS mode (--dockernet-dns=hermetic, the default) a container asks only the test's own containers; "
                "give a container's address (e.g. a fixed ipv4_address), or run with --dockernet-dns=host"
            )
    return resolver


_DNS_EXAMPLES = {"dns": "['10.9.0.53']", "dns_search": "['example.test']", "dns_opt": "['ndots:2', 'timeout:1']"}


class Hosts:
    """The container addresses of a subnet: not its own, its broadcast or its gateway."""

    def __init__(self, subnet: str, gateway: str | None):
        self.subnet = ipaddress.ip_network(subnet)
        gateway_address = ipaddress.ip_address(gateway) if gateway else self.subnet.network_address + 1
        self.taken = {self.subnet.network_address, self.subnet.broadcast_address, gateway_address}

    def __contains__(self, address: object) -> bool:
        return address in self.subnet and address not in self.taken

"""Every key of the Compose Specification, and what ``compose()`` does with it: supported,
ignored (accepted and listed in the warning, with the reason) or refused (with the reason).

The keys are those of the specification's JSON schema (``schema/compose-spec.json`` of
github.com/compose-spec/compose-spec; the copy in ``tests/compose/compose-spec.json``, which
``tests/test_compose_spec_keys.py`` checks this table against, key by key, by loading a sample
of each). The readers take their key lists from here (:func:`check_keys`), and the key table
of ``docs/compose.md`` is :func:`markdown`'s output, so the three cannot drift apart.

A key is ignored only where ignoring it cannot change what a test observes about the network
or the processes; any other key the plugin does not carry out is refused, saying why.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import ComposeError

SUPPORTED, IGNORED, REFUSED = "supported", "ignored", "refused"


@dataclass(frozen=True)
class Key:
    status: str
    why: str = ""  # the reason (ignored, refused), or a note for the docs (supported)


def _ok(note: str = "") -> Key:
    return Key(SUPPORTED, note)


def _ignore(why: str) -> Key:
    return Key(IGNORED, why)


def _refuse(why: str) -> Key:
    return Key(REFUSED, why)


LIMITS = "resource limits are not applied"
OWN = "a test's containers are its own: nothing outside the test's topology is used"
WINDOWS = "it applies to Windows containers only"
PULLS = "a service with build: is built once per run; an image: alone is pulled when the engine lacks it"
FILE_LABELS = "labels of the engine's secret or config object: here the file is put into the container"
TEMPLATES = "templating is not done: the file's content is put in as it is"

# The sections: where their keys sit in a file (the docs' headings) and the keys.
WHERE = {
    "top": "top level",
    "service": "services.NAME",
    "build": "services.NAME.build",
    "deploy": "services.NAME.deploy",
    "healthcheck": "services.NAME.healthcheck",
    "service network": "services.NAME.networks.NETWORK",
    "service volume": "services.NAME.volumes[] (long syntax)",
    "service port": "services.NAME.ports[] (long syntax)",
    "depends_on": "services.NAME.depends_on.SERVICE",
    "env_file": "services.NAME.env_file[]",
    "network": "networks.NAME",
    "ipam": "networks.NAME.ipam",
    "ipam config": "networks.NAME.ipam.config[]",
    "volume": "volumes.NAME",
    "secret": "secrets.NAME",
    "config": "configs.NAME",
}

KEYS: dict[str, dict[str, Key]] = {
    "top": {
        "version": _ok("obsolete in Compose v2, which reads nothing from it: accepted silently"),
        "name": _ok("the stack's name (`stack.name`); the engine's names are the test's own"),
        "include": _ok("each included project with its own project directory and .env; a name defined twice refused"),
        "services": _ok(),
        "models": _refuse("AI models are served by Docker Model Runner, which a test's engine does not provide"),
        "networks": _ok(),
        "volumes": _ok(),
        "secrets": _ok("read-only files at /run/secrets/TARGET (mode 0444, owner 0:0 unless mode, uid, gid say)"),
        "configs": _ok("read-only files at /NAME or the target path (mode 0444, owner 0:0 unless mode, uid, gid say)"),
    },
    "service": {
        "annotations": _ignore("OCI annotations are metadata for the runtime: nothing in the container sees them"),
        "attach": _ignore("every service's logs are collected for the failure report"),
        "blkio_config": _ignore(LIMITS),
        "build": _ok(),
        "cap_add": _ok(),
        "cap_drop": _ok(),
        "cgroup": _ok("host or private"),
        "cgroup_parent": _ignore("the cgroup a container is accounted under changes nothing it does"),
        "command": _ok(),
        "configs": _ok("read-only files at /NAME or the target path (mode 0444, owner 0:0 unless mode, uid, gid say)"),
        "container_name": _ok("kept as an alias the service resolves by; the engine's name is unique per run"),
        "cpu_count": _ignore(LIMITS),
        "cpu_percent": _ignore(LIMITS),
        "cpu_period": _ignore(LIMITS),
        "cpu_quota": _ignore(LIMITS),
        "cpu_rt_period": _ignore(LIMITS),
        "cpu_rt_runtime": _ignore(LIMITS),
        "cpu_shares": _ignore(LIMITS),
        "cpus": _ignore(LIMITS),
        "cpuset": _ignore(LIMITS),
        "credential_spec": _ignore(WINDOWS),
        "depends_on": _ok(),
        "deploy": _ok("see its keys below"),
        "develop": _ignore("file watching is for docker compose watch"),
        "device_cgroup_rules": _refuse(
            "access to the machine's devices is not given to a test's containers: "
            "a test does not depend on the machine's hardware"
        ),
        "devices": _refuse(
            "the machine's devices are not passed into a test's containers: a test does not "
            "depend on the machine's hardware"
        ),
        "dns": _ok("hermetic DNS: servers on the stack's networks only; search and options on top of the plugin's"),
        "dns_opt": _ok("on top of the plugin's options (hermetic DNS)"),
        "dns_search": _ok(),
        "domainname": _ok("the container's domain name (hostname -d)"),
        "entrypoint": _ok(),
        "env_file": _ok(),
        "environment": _ok(),
        "expose": _ok(),
        "extends": _ok("in the file or another (`file:`, relative to the extending file); merged as override files"),
        "external_links": _refuse(OWN + " (link to a service of the file with links:)"),
        "extra_hosts": _ok("list and mapping forms, host-gateway"),
        "gpus": _refuse("GPUs are not given to a test's containers: a test does not depend on the machine's hardware"),
        "group_add": _ok("group names or ids"),
        "healthcheck": _ok(),
        "hostname": _ok("also a name the service resolves by"),
        "image": _ok("pulled when missing"),
        "init": _ok(),
        "ipc": _ok("host, private, shareable, none; another service's (service:NAME) is refused"),
        "isolation": _ignore(WINDOWS),
        "label_file": _ok("KEY=VALUE files, read as env files; labels: wins over them"),
        "labels": _ok(),
        "links": _ok(),
        "logging": _ignore("logs stay with the engine's default driver, for the failure report"),
        "mac_address": _ok(),
        "mem_limit": _ignore(LIMITS),
        "mem_reservation": _ignore(LIMITS),
        "mem_swappiness": _ignore(LIMITS),
        "memswap_limit": _ignore(LIMITS),
        "models": _refuse("AI models are served by Docker Model Runner, which a test's engine does not provide"),
        "network_mode": _ok("host, none, bridge, service:NAME, container:NAME of the same file"),
        "networks": _ok(),
        "oom_kill_disable": _ignore(LIMITS),
        "oom_score_adj": _ignore(LIMITS),
        "pid": _ok("host; another service's (service:NAME) is refused"),
        "pids_limit": _ignore(LIMITS),
        "platform": _ok("when it is the engine's; refused naming the engine's platform otherwise"),
        "ports": _ok("published on free host ports, never the file's fixed ones"),
        "post_start": _refuse(
            "lifecycle hooks (commands run in the container after it starts) are not run by compose()"
        ),
        "pre_stop": _refuse("lifecycle hooks (commands run in the container before it stops) are not run by compose()"),
        "privileged": _ok(),
        "profiles": _ok("`compose(profiles=[...])`, else `COMPOSE_PROFILES`; a service named in `services=` starts"),
        "provider": _refuse(
            "a service made by a provider plugin of the docker compose CLI: compose() runs no Compose CLI plugins"
        ),
        "pull_policy": _ignore(PULLS),
        "pull_refresh_after": _ignore(PULLS),
        "read_only": _ok(),
        "restart": _ignore("the test decides when containers stop and start"),
        "runtime": _ok("when the engine has it; refused naming the engine's runtimes otherwise"),
        "scale": _ok("as deploy.replicas"),
        "secrets": _ok("read-only files at /run/secrets/TARGET (mode 0444, owner 0:0 unless mode, uid, gid say)"),
        "security_opt": _ok(),
        "shm_size": _ok(),
        "stdin_open": _ok("the command's stdin stays open (nothing is written to it), as under docker compose up"),
        "stop_grace_period": _ok("the container's stop timeout: stop() and restart() wait that long"),
        "stop_signal": _ok(),
        "storage_opt": _ignore(LIMITS),
        "sysctls": _ok("net.* only (the container's network namespace)"),
        "tmpfs": _ok(),
        "tty": _ok(),
        "ulimits": _ok(),
        "use_api_socket": _refuse(
            "the engine's socket and the machine's registry credentials are not put into a "
            "test's containers: mount the socket with volumes: if a service needs it"
        ),
        "user": _ok(),
        "userns_mode": _ok("host"),
        "uts": _refuse(
            "the machine's UTS namespace (its host name) is not shared with a test's containers: each has a host "
            "name of its own (its service's)"
        ),
        "volumes": _ok("bind, named and anonymous"),
        "volumes_from": _ok("services of the file (SERVICE, SERVICE:ro): their first container's mounts"),
        "working_dir": _ok(),
    },
    "build": {
        "additional_contexts": _refuse("a build gets its one context directory"),
        "args": _ok(),
        "cache_from": _ok("passed to the builder as cache sources"),
        "cache_to": _ignore("the build cache is not exported: a cache changes how fast an image builds, not what"),
        "context": _ok(),
        "dockerfile": _ok(),
        "dockerfile_inline": _ok(),
        "entitlements": _refuse("a build gets no extra entitlements (network.host, security.insecure)"),
        "extra_hosts": _refuse("a build's RUN steps resolve names as the engine does; no host entries are added"),
        "isolation": _ignore("Windows containers' isolation: a Linux engine has one kind"),
        "labels": _ok("list or mapping; the plugin's own labels (pytest-dockernet.*) are refused"),
        "network": _ok(
            "default, host or none; a network of the file is refused: the image is built before the file's "
            "networks exist, and a build's RUN steps join none of them"
        ),
        "no_cache": _ignore("the image is built once per run by content; the engine's layer cache may serve its steps"),
        "platforms": _refuse("an image is built for the engine's own platform (several need a buildx builder)"),
        "privileged": _refuse("a build gets no extra entitlements (security.insecure)"),
        "provenance": _ignore("attestations are not made: they describe the image, they are not in what it runs"),
        "pull": _ignore("base images are used as the engine has them, pulled only when missing"),
        "sbom": _ignore("attestations are not made: they describe the image, they are not in what it runs"),
        "secrets": _refuse("the plugin passes no secrets to a build: build the image beforehand and give image:"),
        "shm_size": _ignore("resource limits of the build are not applied"),
        "ssh": _refuse("the plugin forwards no SSH agent into a build: build the image beforehand and give image:"),
        "tags": _ignore("the image is the run's and removed at its end: no further tags are made"),
        "target": _ok(),
        "ulimits": _ignore("resource limits of the build are not applied"),
    },
    "deploy": {
        "endpoint_mode": _ok(
            "dnsrr; vip is accepted and listed as ignored (the service name resolves to every "
            "replica's address, as under docker compose up)"
        ),
        "labels": _ignore("they label a swarm service, not its containers (as under docker compose up)"),
        "mode": _ok("replicated, or global: one container (one engine is one node)"),
        "placement": _ignore("one engine runs every replica, as under docker compose up"),
        "replicas": _ok("containers NAME-1, NAME-2, ...; the service name resolves to all of them"),
        "resources": _ignore(LIMITS),
        "restart_policy": _ignore("the test decides when containers stop and start"),
        "rollback_config": _ignore("it paces rollbacks of a swarm service; compose() starts each container once"),
        "update_config": _ignore("it paces updates of a running swarm service; compose() starts each container once"),
    },
    "healthcheck": {
        "disable": _ok(),
        "interval": _ok(),
        "retries": _ok(),
        "start_interval": _ignore("it needs a newer engine API than the plugin's"),
        "start_period": _ok(),
        "test": _ok(),
        "timeout": _ok(),
    },
    "service network": {
        "aliases": _ok(),
        "driver_opts": _refuse(
            "endpoint driver options change the container's interface and are not passed to the engine by compose()"
        ),
        "gw_priority": _refuse(
            "choosing the network of the default route needs Docker Engine 28 (priority: orders how the networks "
            "are joined)"
        ),
        "interface_name": _refuse(
            "naming the container's interface needs Docker Engine 28, and compose() does not pass it on"
        ),
        "ipv4_address": _ok("in the network's own subnet"),
        "ipv6_address": _ok("in the network's IPv6 subnet (ipam.config, with enable_ipv6)"),
        "link_local_ips": _refuse("extra link-local addresses are not assigned by compose()"),
        "mac_address": _ok(
            "on the service's first network (engine API 1.41: a container-level address); on another, engine API 1.44"
        ),
        "priority": _ok("the service joins its networks highest priority first, as under Compose"),
    },
    "service volume": {
        "bind": _ok("propagation, create_host_path, selinux"),
        "consistency": _ok(),
        "image": _refuse("image mounts need Docker Engine 28, and compose() does not make them"),
        "read_only": _ok(),
        "source": _ok(),
        "target": _ok(),
        "tmpfs": _ok("size (bytes), mode (octal)"),
        "type": _ok("bind, volume and tmpfs"),
        "volume": _ok("nocopy"),
    },
    "service port": {
        "app_protocol": _ok("checked, and changes nothing"),
        "host_ip": _ok(),
        "mode": _ok("ingress or host: either publishes on the engine's machine"),
        "name": _ok("checked, and changes nothing"),
        "protocol": _ok(),
        "published": _ok("a free host port is used, never the file's"),
        "target": _ok(),
    },
    "depends_on": {
        "condition": _ok(),
        "required": _ok(),
        "restart": _ignore("the test restarts containers itself"),
    },
    "env_file": {
        "format": _refuse("env files are read in Compose's default format only (format: raw is not)"),
        "path": _ok(),
        "required": _ok(),
    },
    "network": {
        "attachable": _ok(),
        "driver": _ok("bridge or overlay"),
        "driver_opts": _ok(),
        "enable_ipv4": _ok("true; false (an IPv6-only network) is refused: it needs Docker Engine 28"),
        "enable_ipv6": _ok("the IPv6 subnet from ipam.config, else from the plugin's pool"),
        "external": _refuse("a test's networks are its own, made and removed by the test"),
        "internal": _ok(),
        "ipam": _ok("see its keys below"),
        "labels": _ok(),
        "name": _ignore("the engine's name: a test's networks get unique names of their own"),
    },
    "ipam": {
        "config": _ok("one IPv4 entry; with enable_ipv6 one IPv6 entry (subnet only) too"),
        "driver": _ok("default only"),
        "options": _refuse("IPAM options are for other IPAM drivers than the engine's default"),
    },
    "ipam config": {
        "aux_addresses": _refuse("addresses are not reserved for the network driver by compose()"),
        "gateway": _ok("of the IPv4 entry; an IPv6 gateway is its subnet's first address"),
        "ip_range": _refuse("containers take addresses from the whole subnet: give a smaller subnet instead"),
        "subnet": _ok("waited for while another run holds it"),
    },
    "volume": {
        "driver": _ok(),
        "driver_opts": _ok(),
        "external": _ok("used as it is"),
        "labels": _ok(),
        "name": _ignore(
            "the engine's name: a test's volumes get unique names of their own (an external volume's name is taken: "
            "the engine's volume it is)"
        ),
    },
    "secret": {
        "driver": _refuse("a secret store's driver: compose() reads secrets from files and variables only"),
        "driver_opts": _refuse(
            "a secret store's driver options: compose() reads secrets from files and variables only"
        ),
        "environment": _ok("the variable's value (env=, the environment, .env)"),
        "external": _refuse("a test uses nothing outside its own topology"),
        "file": _ok("relative to the project directory"),
        "labels": _ignore(FILE_LABELS),
        "name": _ignore("the engine's name of a swarm secret: here none is made"),
        "template_driver": _refuse(TEMPLATES),
    },
    "config": {
        "content": _ok(),
        "environment": _ok("the variable's value (env=, the environment, .env)"),
        "external": _refuse("a test uses nothing outside its own topology"),
        "file": _ok("relative to the project directory"),
        "labels": _ignore(FILE_LABELS),
        "name": _ignore("the engine's name of a swarm config: here none is made"),
        "template_driver": _refuse(TEMPLATES),
    },
}


def supported(section: str) -> tuple[str, ...]:
    return tuple(key for key, spec in KEYS[section].items() if spec.status == SUPPORTED)


def ignored(section: str) -> dict[str, str]:
    return {key: spec.why for key, spec in KEYS[section].items() if spec.status == IGNORED}


def refusal(where: str, what: str, key: str, section: str, accepted: Iterable[str] = ()) -> str:
    """The message for ``key`` of ``what`` (e.g. ``service 'web'``), where it is not taken: a
    key of the specification says why, any other gets a "did you mean" and the keys that are."""
    spec = KEYS[section].get(key)
    if spec is not None and spec.status == REFUSED:
        return f"{where}: key {key!r} of {what} is not supported by pytest-dockernet's compose(): {spec.why}"
    accepted = list(accepted) or list(supported(section))
    close = difflib.get_close_matches(key, [*accepted, *KEYS[section]], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"{where}: key {key!r} of {what} is not supported by pytest-dockernet's compose(){hint}; "
        f"supported: {', '.join(accepted)}"
    )


def check_keys(section: str, spec: Mapping[str, object], where: str, what: str, ignored_keys: list[str],
               path: str) -> None:  # fmt: skip
    """Refuse the keys of ``spec`` that ``compose()`` does not take, and list the ignored
    ones in ``ignored_keys`` as ``"PATH.KEY (why)"``; ``x-`` keys are the file's own."""
    for key in spec:
        if str(key).startswith("x-"):
            continue
        status = KEYS[section].get(str(key), Key(REFUSED))
        if status.status == IGNORED:
            ignored_keys.append(f"{path}.{key} ({status.why})")
        elif status.status == REFUSED:
            raise ComposeError(refusal(where, what, str(key), section))


def markdown() -> str:
    """The key table of ``docs/compose.md``."""
    lines = []
    for section, keys in KEYS.items():
        lines += [
            f"**`{WHERE[section]}`**",
            "",
            "| key | status | what compose() does, or why not |",
            "| --- | --- | --- |",
        ]
        for key, spec in keys.items():
            lines.append(f"| `{key}` | {spec.status} | {spec.why.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)

"""The values of a Compose file's keys, each checked where it is read: plain shapes
(strings, lists, mappings, names), ``ports``, ``expose``, ``volumes`` entries and
``healthcheck``. Every refusal is a :class:`ComposeError` whose message starts with the
key's path (``FILE: services.api.ports[0].target``), so that a file fails before
``compose()`` makes anything, never later in ``container()`` with a message naming
neither file nor service.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ComposeError
from .spec_keys import refusal

# Each published or exposed port is a binding the engine keeps (and, for a published one,
# a proxy process); a service asking for more is almost surely a range written by mistake.
MAX_PORTS = 100
PROTOCOLS = ("tcp", "udp", "sctp")
MAX_NAME = 63  # names are host names and DNS labels
# [[host_ip:]host_port:]container_port[/protocol], ports or ranges ("8000-8002")
_PORT = re.compile(
    r"^(?:(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(?P<host>\d*(?:-\d+)?):)?"
    r"(?P<target>\d+(?:-\d+)?)(?:/(?P<proto>[a-z]+))?$"
)
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$", re.IGNORECASE)
_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Mode flags of a volume's short syntax, as the engine takes them after ro/rw.
SELINUX = ("z", "Z")
PROPAGATION = ("shared", "slave", "private", "rshared", "rslave", "rprivate")
CONSISTENCY = ("consistent", "cached", "delegated")
_MOUNT_KEYS = ("type", "source", "target", "read_only", "bind", "volume", "consistency")


@dataclass
class Mount:
    kind: str  # "bind", "volume" (named), "anonymous" or "tmpfs" (its flags: the engine's tmpfs options)
    source: str | None
    target: str
    read_only: bool = False
    flags: tuple[str, ...] = ()  # further mode flags: z, Z, nocopy, propagation, consistency

    def mode(self) -> str:
        """The mode of ``source:target:mode`` as ``container(volumes=)`` takes it."""
        return ",".join(("ro" if self.read_only else "rw", *self.flags))


def items(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ComposeError(f"{where} must be a list, got {value!r}")
    return value


def mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ComposeError(f"{where} must be a mapping, got {value!r}")
    return value


def entries(value: object, where: str) -> dict[str, Any]:
    """A mapping of names to specs (``services``, ``networks``, ``ipam``...): the names as
    text, a name with nothing after it as an empty spec."""
    return {str(k): {} if v is None else v for k, v in mapping(value, where).items()}


def scalar(value: object, where: str) -> str:
    """A string, number or boolean as the text Compose makes of it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ComposeError(f"{where} must be a string or a number, got {value!r}")


def text(value: object, where: str) -> str | None:
    """None, or a non-empty string (a number is taken as its text)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ComposeError(f"{where} must be a non-empty string, got {value!r}")
    return value


def flag(value: object, where: str, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ComposeError(f"{where} must be true or false, got {value!r}")
    return value


def name(value: object, where: str, what: str) -> str:
    """A name that is also a host name and a DNS label (services, aliases, networks)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _NAME.match(value) or len(value) > MAX_NAME:
        raise ComposeError(
            f"{where}: {value!r} is not a {what}: letters, digits, '_', '.' and '-', starting with a letter or "
            f"digit, at most {MAX_NAME} characters"
        )
    return value


def strings(value: object, where: str, what: str = "a string") -> list[str]:
    """A list of strings (numbers taken as their text)."""
    result = []
    for i, item in enumerate(items(value, where)):
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ComposeError(f"{where}[{i}] must be {what}, got {item!r}")
        result.append(str(item))
    return result


def port_range(value: object, where: str) -> list[int]:
    """A port (``80``) or a range (``"8000-8010"``) as its ports."""
    match = _RANGE.match(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    start, end = (int(match[1]), int(match[2] or match[1])) if match else (0, 0)
    if not 0 < start <= end < 65536:
        raise ComposeError(f"{where}: {value!r} is not a port or a range of ports (1-65535), such as 80 or '8000-8010'")
    if end - start >= MAX_PORTS:
        raise ComposeError(
            f"{where}: {value!r} is a range of {end - start + 1:,} ports; compose() takes at most {MAX_PORTS} ports "
            "per service (each one a binding the engine keeps): give the few the test needs"
        )
    return list(range(start, end + 1))


def _protocol(value: object, where: str) -> str:
    if value not in PROTOCOLS:
        raise ComposeError(f"{where}: {value!r} is not one of {', '.join(PROTOCOLS)}")
    return str(value)


def _host_ip(value: object, where: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip("[]")))
    except ValueError:
        raise ComposeError(f"{where}: {value!r} is not an IP address of the host, such as 127.0.0.1") from None


def ports(value: object, where: str) -> dict[str, Any]:
    """``{"80/tcp": binding}`` for container(): every published port gets a free host port
    (on the file's host address, if any), so runs of one file never collide."""
    bindings: dict[str, list[Any]] = {}
    for i, entry in enumerate(items(value, where)):
        at = f"{where}[{i}]"
        if isinstance(entry, Mapping):
            keys = ("target", "published", "host_ip", "protocol", "mode", "name", "app_protocol")
            extra = [str(k) for k in entry if k not in keys]
            if extra:
                raise ComposeError(f"{at}: key {extra[0]!r} is not a Compose port key: use {', '.join(keys)}")
            if entry.get("target") is None:
                raise ComposeError(f"{at}: {dict(entry)!r} needs 'target', the port inside the container")
            targets = port_range(entry["target"], f"{at}.target")
            if entry.get("published") not in (None, ""):
                port_range(entry["published"], f"{at}.published")
            proto = _protocol(entry.get("protocol", "tcp"), f"{at}.protocol")
            ip = None if entry.get("host_ip") is None else _host_ip(entry["host_ip"], f"{at}.host_ip")
            if entry.get("mode", "ingress") not in ("ingress", "host"):
                raise ComposeError(f"{at}.mode: {entry['mode']!r} is not 'ingress' or 'host'")
            for key in ("name", "app_protocol"):
                text(entry.get(key), f"{at}.{key}")
        else:
            match = _PORT.match(str(entry)) if isinstance(entry, (str, int)) and not isinstance(entry, bool) else None
            if match is None:
                raise ComposeError(f"{at}: {entry!r} is not [[host_ip:]host_port:]container_port[/protocol]")
            targets = port_range(match["target"], at)
            if match["host"]:
                port_range(match["host"], at)
            proto = _protocol(match["proto"] or "tcp", at)
            ip = None if match["ip"] is None else _host_ip(match["ip"], at)
        for target in targets:
            bindings.setdefault(f"{target}/{proto}", []).append((ip,) if ip else None)
        _at_most(len(bindings), at)
    return {key: found[0] if len(found) == 1 else found for key, found in bindings.items()}


def expose(value: object, where: str) -> list[str]:
    """``["8080", "53/udp"]``, ranges written out."""
    exposed: dict[str, None] = {}
    for i, entry in enumerate(items(value, where)):
        port, _, proto = scalar(entry, f"{where}[{i}]").partition("/")
        proto = _protocol(proto or "tcp", f"{where}[{i}]")
        for number in port_range(port, f"{where}[{i}]"):
            exposed[str(number) if proto == "tcp" else f"{number}/{proto}"] = None
        _at_most(len(exposed), f"{where}[{i}]")
    return list(exposed)


def _at_most(count: int, where: str) -> None:
    if count > MAX_PORTS:
        raise ComposeError(
            f"{where}: with this entry the service has {count} ports; compose() takes at most {MAX_PORTS} per service "
            "(each one a binding the engine keeps): give the few the test needs"
        )


def seconds(value: object, where: str) -> float:
    """A Compose duration (``"1m30s"``, ``"500ms"``, or a number of seconds) in seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ComposeError(f"{where}: {value!r} is not a duration such as '10s', '1m30s' or '500ms'")
        return float(value)
    source = str(value).strip()
    parts = _DURATION_PART.findall(source)
    if not parts or "".join(n + u for n, u in parts) != source:
        raise ComposeError(f"{where}: {value!r} is not a duration such as '10s', '1m30s' or '500ms'")
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


def healthcheck(value: object, where: str, ignored: list[str], path: str) -> dict[str, Any] | None:
    """docker-py's healthcheck (durations in seconds); ``start_interval`` is listed in
    ``ignored`` under ``path``."""
    if value is None:
        return None
    spec = mapping(value, where)
    keys = ("test", "interval", "timeout", "retries", "start_period", "start_interval", "disable")
    for key in spec:
        if key not in keys:
            raise ComposeError(f"{where}: key {key!r} of healthcheck is not supported; supported: {', '.join(keys)}")
    if flag(spec.get("disable"), f"{where}.disable"):
        return {"test": ["NONE"]}
    test = spec.get("test")
    if test is None:
        raise ComposeError(f"{where}: give the healthcheck a 'test' (or 'disable: true')")
    if isinstance(test, str):
        if not test.strip():
            raise ComposeError(f"{where}.test: an empty command; give the command that checks the service")
    elif not isinstance(test, list) or not test or not all(isinstance(t, str) for t in test):
        raise ComposeError(f"{where}.test must be a command line or a list of strings, got {test!r}")
    checked: dict[str, Any] = {"test": test}
    for key in ("interval", "timeout", "start_period"):
        if spec.get(key) is not None:
            checked[key] = seconds(spec[key], f"{where}.{key}")
    if spec.get("start_interval") is not None:
        seconds(spec["start_interval"], f"{where}.start_interval")
        ignored.append(f"{path}.start_interval (it needs a newer engine API than the plugin's)")
    retries = spec.get("retries")
    if retries is not None:
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ComposeError(f"{where}.retries: {retries!r} is not a whole number, 0 or more")
        checked["retries"] = retries
    return checked


def mount(value: object, where: str, root: Path) -> Mount:
    """One ``volumes:`` entry: ``source:/path/inside[:mode]``, a path alone (anonymous), or
    the long syntax (bind, volume and tmpfs)."""
    if isinstance(value, Mapping) and value.get("type") == "tmpfs":
        return tmpfs_mount(value, where)
    if isinstance(value, Mapping):
        kind, target, source, read_only, flags = _long_mount(value, where)
    elif isinstance(value, str):
        parts = value.split(":")
        if len(parts) > 3 or not all(parts):
            raise ComposeError(f"{where}: {value!r} is not 'source:/path/inside[:mode]' or '/path/inside'")
        if len(parts) == 1:
            kind, source, target = "anonymous", None, parts[0]
        else:
            source, target = parts[0], parts[1]
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        read_only, flags = _short_mode(parts[2] if len(parts) == 3 else "", kind, where)
    else:
        raise ComposeError(f"{where}: each entry is 'source:/path/inside[:mode]' or a mapping, got {value!r}")
    if not target.startswith("/"):
        raise ComposeError(f"{where}: {target!r}: the path inside the container must be absolute")
    if kind == "bind":
        if not source:
            raise ComposeError(f"{where}: a bind mount needs its 'source' path")
        source = str((root / Path(source).expanduser()).resolve())
    elif kind == "volume" and source:
        name(source, f"{where}.source" if isinstance(value, Mapping) else where, "volume name")
    else:
        if read_only or flags:
            raise ComposeError(f"{where}: an anonymous volume at {target} takes no mode: it is always 'rw'")
        kind, source = "anonymous", None
    return Mount(kind, source, target, read_only, flags)


def _short_mode(mode: str, kind: str, where: str) -> tuple[bool, tuple[str, ...]]:
    """``ro``/``rw`` and the further flags of a short syntax's mode."""
    allowed = {
        "bind": (*SELINUX, *PROPAGATION, *CONSISTENCY),
        "volume": (*SELINUX, "nocopy", *CONSISTENCY),
        "anonymous": (*SELINUX, "nocopy", *CONSISTENCY),
    }[kind]
    read_only, flags = False, []
    access = [f for f in mode.split(",") if f in ("ro", "rw")] if mode else []
    if len(access) > 1:
        raise ComposeError(f"{where}: mode {mode!r} says {' and '.join(access)}: give one")
    for part in mode.split(",") if mode else []:
        if part in ("ro", "rw"):
            read_only = part == "ro"
        elif part in allowed and part not in flags:
            flags.append(part)
        else:
            raise ComposeError(
                f"{where}: mode flag {part!r} is not one of ro, rw, {', '.join(allowed)} (for a {kind} mount)"
            )
    return read_only, tuple(flags)


def _long_mount(value: Mapping[str, Any], where: str) -> tuple[str, str, str | None, bool, tuple[str, ...]]:
    for key in value:
        if key not in _MOUNT_KEYS:
            raise ComposeError(refusal(where, "a volume", str(key), "service volume", _MOUNT_KEYS))
    kind, target = value.get("type", "volume"), value.get("target")
    if kind not in ("bind", "volume") or not isinstance(target, str):
        raise ComposeError(f"{where}: {dict(value)!r}: give 'target' and a type of 'bind', 'volume' or 'tmpfs'")
    source = text(value.get("source"), f"{where}.source")
    read_only = flag(value.get("read_only"), f"{where}.read_only")
    flags: list[str] = []
    if value.get("consistency") is not None:
        if value["consistency"] not in CONSISTENCY:
            raise ComposeError(f"{where}.consistency: {value['consistency']!r} is not one of {', '.join(CONSISTENCY)}")
        flags.append(value["consistency"])
    options = {"bind": ("propagation", "create_host_path", "selinux"), "volume": ("nocopy",)}
    for key in ("bind", "volume"):
        spec = mapping(value.get(key), f"{where}.{key}")
        if spec and key != kind:
            raise ComposeError(f"{where}.{key}: options of a {key} mount on a mount of type {kind!r}")
        for option, setting in spec.items():
            at = f"{where}.{key}.{option}"
            if option not in options[key]:
                raise ComposeError(f"{at}: not supported; supported: {', '.join(options[key])}")
            if option == "propagation" and setting not in PROPAGATION:
                raise ComposeError(f"{at}: {setting!r} is not one of {', '.join(PROPAGATION)}")
            if option == "selinux" and setting not in SELINUX:
                raise ComposeError(f"{at}: {setting!r} is not 'z' or 'Z'")
            if option in ("propagation", "selinux"):
                flags.append(setting)
            elif flag(setting, at) and option == "nocopy":
                flags.append("nocopy")
    return kind, target, source, read_only, tuple(flags)


def tmpfs_mount(value: Mapping[str, Any], where: str) -> Mount:
    """A ``volumes:`` entry of ``type: tmpfs`` (``tmpfs.size`` in bytes, ``tmpfs.mode`` in
    octal): the options its ``flags`` carry are the engine's tmpfs options."""
    for key in value:
        if key not in ("type", "target", "read_only", "tmpfs", "consistency"):
            raise ComposeError(f"{where}: key {key!r} is not one of a tmpfs mount (type, target, read_only, tmpfs)")
    target = value.get("target")
    if not isinstance(target, str) or not target.startswith("/"):
        raise ComposeError(f"{where}.target: {target!r}: give the absolute path inside the container")
    flags = []
    for key, setting in mapping(value.get("tmpfs"), f"{where}.tmpfs").items():
        at = f"{where}.tmpfs.{key}"
        if key == "size":
            flags.append(f"size={byte_size(setting, at)}")
        elif key == "mode":
            flags.append(f"mode={_octal(setting, at)}")
        else:
            raise ComposeError(f"{at}: not supported; supported: size, mode")
    read_only = value.get("read_only", False)
    if not isinstance(read_only, bool):
        raise ComposeError(f"{where}.read_only must be true or false, got {read_only!r}")
    if read_only:
        flags.append("ro")
    return Mount("tmpfs", None, target, read_only, tuple(flags))


def _octal(value: object, where: str) -> str:
    digits = str(value).removeprefix("0o") if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if isinstance(value, int) and not isinstance(value, bool) and set(digits) - set("01234567"):
        digits = format(value, "o")  # a YAML octal literal (0755) read as its number
    if not digits or set(digits) - set("01234567") or int(digits, 8) > 0o7777:
        raise ComposeError(f"{where}: {value!r} is not a file mode in octal, such as 1777 or '0755'")
    return digits


def byte_size(value: object, where: str) -> int:
    """A Compose byte value (``67108864``, ``"64m"``, ``"1gb"``) in bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _BYTES.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ComposeError(f"{where}: {value!r} is not a size in bytes, such as 67108864, '64m' or '1gb'")
    return int(float(match[1]) * _UNIT[match[2].lower()])

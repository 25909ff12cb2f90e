"""Small questions and commands over an :class:`~.port.Engine` that several parts ask:
run a command in a container, the subnets in use, whether a network exists."""

from __future__ import annotations

from .connect import Client, as_engine


def exec_in(engine: Client, container_id: str, cmd: str | list[str]) -> tuple[int, str]:
    """Run ``cmd`` in a running container: (exit code, stdout+stderr)."""
    engine = as_engine(engine)
    exec_id = engine.exec_create(container_id, cmd, stdout=True, stderr=True)["Id"]
    output = engine.exec_start(exec_id)
    return engine.exec_inspect(exec_id)["ExitCode"], output.decode(errors="replace")


def engine_subnets(engine: Client) -> list[str]:
    """Every subnet the engine's networks use now (one API call)."""
    return [
        config["Subnet"]
        for network in as_engine(engine).networks()
        for config in (network.get("IPAM") or {}).get("Config") or []
        if config.get("Subnet")
    ]


def has_network(engine: Client, name: str) -> bool:
    return any(n["Name"] == name for n in as_engine(engine).networks(names=[name]))

"""A topology as failure messages show it: its networks, containers (each with its state),
faults in force and services, read from its run :class:`~pytest_dockernet.context.Context`.

A failing test's report shows it in a section; a failing helper's message shows it only
where no report will (:func:`unreported`); ``Topology.describe()`` on request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .engine.errors import EngineException

if TYPE_CHECKING:
    from .context import Context
    from .handles import Container


# A nemesis lifts a fault every second or so: the report shows the last ones.
LIFTED_SHOWN = 20


def describe(context: Context) -> str:
    """The topology of ``context`` as failure messages show it."""
    lines = [f"topology {context.label}:", "  networks:"]
    nets = list(context.networks)
    if not nets:
        lines.append("    (none)")
    for n in nets:
        extra = f"  gateway {n.gateway}" if n.gateway else ""
        extra += "  internal" if n.internal else ""
        lines.append(f"    {n.name}  [{n.docker_name}]  {n.driver}  {n.subnet or '-'}{extra}")
    lines.append("  containers:")
    containers = list(context.containers)
    if not containers:
        lines.append("    (none)")
    for c in containers:
        mode = f"  network_mode={c.network_mode}" if c.network_mode else ""
        on = f"  on engine {c.host}" if c.host else ""
        lines.append(f"    {c.name}  [{c.docker_name}]  {c.image}{mode}{on}  ({status_of(c)})")
        for docker_name, e in c.endpoints.items():
            net = e.network.name if e.network else docker_name
            lines.append(f"      on {net}: {e.ip or '-'}  aliases: {', '.join(e.aliases) or '-'}")
    faults = context.faults_in_force()
    if faults:
        lines.append("  faults in force:")
        lines.extend(f"    {f.describe()}" for f in faults)
    lifted = context.faults_lifted()
    if lifted:
        lines.append("  faults lifted during the test:")
        if len(lifted) > LIFTED_SHOWN:
            lines.append(f"    ({len(lifted) - LIFTED_SHOWN} earlier ones: the timeline has them)")
        lines.extend(f"    {f.describe()}" for f in lifted[-LIFTED_SHOWN:])
    services = list(context.services)
    if services:
        lines.append("  services:")
        for v in services:
            lines.append(f"    {v.name}  [{v.docker_name}]  {v.image}  endpoint_mode={v.endpoint_mode}")
    return "\n".join(lines)


def unreported(context: Context) -> str:
    """The topology, on a line of its own, for a failure message whose test report will not
    show it: the plugin's report shows its fixtures' topologies in a section (once), except
    in a teardown; a topology made outside them (``Topology(client)``) has no report."""
    return "" if context.reported else "\n" + describe(context)


def status_of(container: Container) -> str:
    """``container.status()``, or what is known when the engine does not answer."""
    try:
        return container.status()
    except EngineException:
        return "state unknown: the engine did not answer"

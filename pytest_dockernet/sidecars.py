"""Probe sidecars: a probe-image container in another container's network namespace, for
probes from a container whose image has no tools (or no shell).

One per container, started on the first probe that needs it (``Context.sidecar_of``,
registered here) and removed with its container; a start again gives the container a new
namespace, so its sidecar is left behind in the old one and removed (:meth:`Sidecars.forget`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .engine import remove_container, remove_containers_named, undone_on_failure
from .engine.gate import gate_for
from .labels import PREFIX
from .probes import RESIDENT

if TYPE_CHECKING:
    from .context import Context
    from .handles import Container


class Sidecars:
    """The probe sidecars of one topology's containers."""

    def __init__(self, context: Context):
        self.context = context
        context.sidecar_of = self.of

    def of(self, source: Container) -> str:
        """The id of ``source``'s probe sidecar (a probe-image container in its network
        namespace), started on first use."""
        with self.context.lock:
            if source.sidecar_id is None:
                source.sidecar_id = self._start(source)
            return source.sidecar_id

    def forget(self, container: Container) -> None:
        """Remove ``container``'s sidecar, if it has one: probes of ``container`` start another."""
        with self.context.lock:  # not while of() makes one under the same name
            sidecar, container.sidecar_id = container.sidecar_id, None
            if sidecar is not None:
                self.context.shells.discard(sidecar)
                remove_container(container.engine, sidecar)

    def _start(self, source: Container) -> str:
        self.context.provide_probe_image(source.host)
        sidecar_id = start_resident(
            self.context,
            source,
            self.context.probe_image,
            f"{source.docker_name}-probe",
            self.context.labels_for("sidecar", source.name, {PREFIX + ".sidecar-of": source.id}),
            doing=f"starting the probe sidecar of {source.name!r}",
        )
        self.context.timings.count("sidecars")
        return sidecar_id


def start_resident(
    context: Context,
    of: Container,
    image: str,
    name: str,
    labels: dict[str, str],
    *,
    doing: str,
    cap_add: Sequence[str] = (),
) -> str:
    """Start a container of ``image`` running the resident shell in ``of``'s network namespace
    (a probe sidecar, a fault helper); its id. A start that fails half-way leaves nothing."""
    engine = of.engine
    with undone_on_failure(doing, lambda: remove_containers_named(engine, name, context.filters())):
        with gate_for(engine).building():
            created = engine.create_container(
                image,
                command=RESIDENT,
                stdin_open=True,
                name=name,
                labels=labels,
                host_config=engine.create_host_config(
                    network_mode=f"container:{of.id}", cap_add=with_net_raw(context, of.host, list(cap_add) or None)
                ),
                detach=True,
            )
            engine.start(created["Id"])
    started: str = created["Id"]
    return started


def with_net_raw(
    context: Context,
    engine: int,
    cap_add: list[str] | None,
    privileged: bool = False,
    host_config: Mapping[str, Any] | None = None,
) -> list[str] | None:
    """``cap_add``, with NET_RAW where engine ``engine``'s default capabilities leave it out
    (capability "icmp": Podman's do, Docker's do not), so that ICMP probes ping from the
    containers the plugin starts on either; not for a privileged container, nor one whose
    ``docker_options`` drop it."""
    dropped = {str(c).upper().removeprefix("CAP_") for c in (host_config or {}).get("cap_drop") or ()}
    if privileged or "NET_RAW" in {c.upper().removeprefix("CAP_") for c in cap_add or ()}:
        return cap_add
    if dropped & {"NET_RAW", "ALL"} or context.has("icmp", engine):
        return cap_add
    return [*(cap_add or []), "NET_RAW"]

"""What one pytest process of a run holds (``config.stash[STATE]`` in the plugin): the
engine, found and pruned once; the further engines; the probe image; the run's
lease; the subnet allocator; what the run has to report at its end; and, in the process
that ends the run, the images ``build()`` named for it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from .end_of_run import detachable, hand_over
from .engine import connect, engine_subnets, where
from .engine.errors import APIError
from .errors import EngineUnavailable, ImageUnavailable
from .facts import RunFacts
from .image import ProbeImage, resolve_probe_image
from .keep_warm import Keeper, match_key
from .keep_warm import hold as hold_keeper
from .labels import RunIdentity
from .lease import Lease
from .remover import Remover
from .settings import Settings
from .subnets import SubnetAllocator, parse_subnet_range
from .swarm import USER
from .timings import Timings

if TYPE_CHECKING:
    from .engine.port import Engine
    from .lab import Lab
    from .reaper import Pruned
    from .teardown import Removal
    from .topology import Topology
    from .warm_pool import WarmPool

# Every pytest run makes a State; the parts only some runs need (builds, the lab, the prune,
# the warm pool) are imported by the methods that use them.

# The key of xdist's workerinput under which the controller gives each worker its identity
# labels: the images the run builds are the controller's, which ends the run.
RUN_OWNER = "dockernet_run_owner"


@dataclass
class State:
    """Per-process plugin state (``config.stash[STATE]``)."""

    settings: Settings
    identity: RunIdentity = field(default_factory=RunIdentity)
    worker: str | None = None  # the xdist worker id, in a worker
    _engine: Engine | None = None
    _engine_error: str | None = None
    _image: ProbeImage | None = None
    _image_error: str | None = None
    allocator: SubnetAllocator | None = None
    pruned: Pruned | None = None
    kept: list[str] = field(default_factory=list)
    live: set[Topology] = field(default_factory=set)
    remover: Remover[Removal] = field(default_factory=Remover)  # teardowns that overlap the next test
    teardown_errors: list[str] = field(default_factory=list)
    facts: RunFacts = field(default_factory=RunFacts)  # shared by the run's topologies
    lab: Lab | None = None
    lease: Lease | None = None  # tells other runs that this one is alive (see .lease)
    swarm_user: bool = False  # this run uses a swarm the plugin made (--dockernet-swarm auto)
    swarm_kept: str | None = None  # the summary's line: the plugin's swarm stayed, and why
    setup_error: str | None = None  # the lab or the swarm could not be made
    engine_lost: str | None = None  # the engine stopped answering during the run: why
    reported_errors: int = 0  # teardown_errors the summary has shown
    _engines: list[Engine] | None = None
    timings: Timings = field(default_factory=Timings)
    worker_notes: list[str] = field(default_factory=list)  # xdist controller: the workers' notes
    worker_builds: set[str] = field(default_factory=set)  # xdist controller: images build() named in workers
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_connect: list[Callable[[], None]] = field(default_factory=list)  # called once, on the first connection
    pool: WarmPool | None = None  # started by the first topology that may use it (warm_pool())

    @property
    def connected(self) -> Engine | None:
        """The engine if this process has connected to it (never connects)."""
        return self._engine

    @property
    def image(self) -> ProbeImage | None:
        """The probe image once resolved."""
        return self._image

    def join_run(self, workerinput: dict[str, Any] | None) -> None:
        """In an xdist worker: note its id, and the controller's labels as the run's owner."""
        workerinput = workerinput or {}
        self.worker = workerinput.get("workerid")
        self.facts.owner = workerinput.get(RUN_OWNER)

    def owner_labels(self) -> dict[str, str]:
        """The identity labels of the process that ends the run (this one, unless a worker)."""
        return dict(self.facts.owner or self.identity.labels())

    def named_builds(self) -> list[str]:
        """The images ``build()`` named for the run (built without a tag) in this process."""
        if not self.facts.builds:
            return []
        from .builds import is_run_build

        return sorted(ref for ref in self.facts.builds.values() if is_run_build(ref))

    def remove_builds(self) -> list[str]:
        """At the end of the run, in the process that ends it (the only one, or the xdist
        controller once its workers are gone): remove the images ``build()`` named for it.

        Connects only if some process of the run named one. Images a container still uses
        (kept with --dockernet-keep) stay: a later run's prune takes them.
        """
        if self.worker is not None or not (self.worker_builds or self.named_builds()):
            return []
        from .builds import remove_builds

        engine, own = self._engine, self._engine is None
        if engine is None:
            engine = connect()
        try:
            return remove_builds(engine, self.identity.run_id)
        finally:
            if own:
                engine.close()

    def engine(self) -> Engine:
        """The environment's engine (engine 0); raises EngineUnavailable (once probed, remembered)."""
        with self.lock:
            if self._engine is None and self._engine_error is None:
                try:
                    engine = connect()
                except EngineUnavailable as exc:
                    self._engine_error = str(exc)
                else:
                    try:
                        self._start(engine)
                    except BaseException:  # asked again next time, so that it raises there too
                        engine.close()
                        raise
                    self._engine = engine
            if self._engine_error is not None:
                raise EngineUnavailable(self._engine_error)
            # In the main thread: on_connect installs a signal handler (see start_early).
            calls = self.on_connect if threading.current_thread() is threading.main_thread() else []
            self.on_connect = [] if calls else self.on_connect
        for call in calls:
            call()
        return cast("Engine", self._engine)  # connected, or raised above

    def close_pool_for_swarm(self) -> None:
        """In a run that makes a swarm: remove the pool before the swarm is left (see makes_swarm)."""
        pool = self.pool
        if pool is not None and self.makes_swarm():
            self.pool = None
            pool.close()

    def makes_swarm(self) -> bool:
        """Whether the run makes a swarm (or a lab) and leaves it at its end: a swarm leave
        waits for every container on a user-defined network to be gone (it would wipe their
        names), so such a run ends as before: nothing left joined, removed before pytest exits."""
        return bool(self.settings.lab) or self.settings.swarm == "auto"

    def start_early(self) -> None:
        """While pytest goes on to the first test (which imports the topology's parts): the
        run's own start (connect, the dead runs' prune, the subnets taken, the probe image)
        in a thread, mostly waiting on the engine. The first test's own calls wait for it
        (the lock) and raise whatever failed here."""

        def start() -> None:
            try:
                self.engine()
                self.probe_image()
            except Exception:  # noqa: BLE001, S110 - raised again by the first test's own calls
                pass

        threading.Thread(target=start, name="dockernet-start", daemon=True).start()
        from . import topology  # noqa: F401 - meanwhile, in this thread: the first test's set-up needs it

    def current_lab(self) -> Lab | None:
        """The lab this process brought up, else the one up on this machine (None if none)."""
        from .lab import Lab

        return self.lab or Lab.load()

    def _start(self, engine: Engine) -> None:
        from .reaper import prune

        if self.facts.capabilities is not None:  # what the engine is: asked at the first Docker call
            self.facts.capabilities.of(engine).info  # noqa: B018 - read now, for the summary
        if self.worker in (None, "gw0"):  # one prune per run, not one per xdist worker
            self.pruned = prune(engine, self.identity)
        supernet, prefix = parse_subnet_range(self.settings.subnet_pool)
        self.allocator = SubnetAllocator(str(supernet), prefix, taken=engine_subnets(engine))

    def engines(self) -> list[Engine]:
        """Engines 1... (--dockernet-hosts, or the lab's); raises EngineUnavailable."""
        if self.setup_error is not None:
            raise EngineUnavailable(self.setup_error)
        with self.lock:
            if self._engines is None:
                hosts = list(self.settings.hosts)
                if self.settings.lab:
                    lab = self.current_lab()
                    if lab is None:
                        raise EngineUnavailable("--dockernet-lab: no lab is up (its bring-up failed; see above)")
                    hosts = lab.hosts
                try:
                    self._engines = [connect(url) for url in hosts]
                except EngineUnavailable as exc:
                    raise EngineUnavailable(f"{exc} (an engine of --dockernet-hosts)") from None
            return self._engines

    def hold_lease(self, engine: Engine, image: str, *, swarm_user: bool = False) -> None:
        """Create this run's lease before it makes anything (once); it starts in the background
        a moment later (see .lease), and a later call raises if it could not start."""
        from .lease import START_WITHIN  # read when called: a test may set it

        with self.lock:
            if self.lease is None:
                labels = {USER: "1"} if swarm_user else None
                self.lease = Lease(engine, self.identity, image, labels, start_after=START_WITHIN)
                return
            lease = self.lease
        try:
            lease.check()
        except BaseException:
            with self.lock:  # the next test makes another
                if self.lease is lease:
                    self.lease = None
            raise

    def warm_pool(self, engine: Engine, image: str) -> WarmPool | None:
        """The process's warm pool (see .warm_pool); None when turned off (``--dockernet-pool 0``)
        or when failed tests' containers are kept."""
        settings = self.settings
        if settings.pool == 0 or settings.keep:
            return None
        from .warm_pool import WarmPool

        with self.lock:
            if self.pool is None:
                keeper = self._keeper(engine, image) if settings.keep_warm else None
                self.pool = WarmPool(engine, self.identity, settings.pool, image, settings.dns, self.allocator, keeper)
                self.pool.parks = not self.makes_swarm()  # its swarm leave waits for no container on a network
            return self.pool

    def _keeper(self, engine: Engine, image: str) -> Keeper | None:
        """With ``--dockernet-keep-warm``: the keeper this process's pool adopts or starts (see
        .keep_warm); None, and a pool of the run's own, if the engine refuses a step."""
        from . import __version__  # the package is whole by now

        settings = self.settings
        try:
            key = match_key(__version__, engine.inspect_image(image)["Id"], settings.dns, settings.subnet_pool)
            return hold_keeper(engine, self.identity, image, key, settings.keep_warm)
        except APIError:  # a keeper it claimed dies with the run (its held lease names the run)
            return None

    def end(self) -> None:
        """The run's last step, after every topology: remove the pool's containers and networks
        (the last test's among them), then end the lease; or end the lease and leave the
        removal to a detached process, which nobody waits for (see .end_of_run). A pool with
        a keeper (keep-warm) hands its idle containers back to it first, here."""
        pool, self.pool, lease = self.pool, None, self.lease
        handed = False
        try:
            if pool is not None and pool.keeper is not None:
                pool.close()  # the keeper's own: its idle ones stay, the rest go (see .keep_warm)
            if lease is not None and self._detachable(lease):
                lease.close(remove=False)  # from now on the run is a dead one's to every prune
                handed = hand_over(self.identity.run_id)
            if pool is not None and not handed:
                pool.close()
        finally:  # last, whatever failed: a run's end is known by its lease
            if lease is not None and not handed:
                lease.close(remove=not self.kept)  # kept resources keep their ended lease beside them

    def _detachable(self, lease: Lease) -> bool:
        return (
            self.settings.teardown == "background"
            and not self.makes_swarm()
            and not (self.kept or self.teardown_errors or self.engine_lost)  # else said here, as it fails
            and not lease.failed  # started, or ends unstarted (see .lease)
            and not self._engines  # engine 0 only: the others have no lease
            and self.lab is None
            and where(lease.engine) == where()  # the detached process connects as the environment says
            and detachable()
        )

    def probe_image(self) -> str:
        engine = self.engine()
        with self.lock:
            if self._image is None and self._image_error is None:
                try:
                    with self.timings.measure("image"):
                        self._image = resolve_probe_image(engine, self.settings.image, self.settings.busybox)
                except ImageUnavailable as exc:
                    self._image_error = f"dockernet: no probe image.\n{exc}"
            if self._image_error is not None:
                raise ImageUnavailable(self._image_error)
            return cast(ProbeImage, self._image).name  # resolved, or raised above

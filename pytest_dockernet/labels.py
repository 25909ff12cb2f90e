"""Who owns a Docker resource: the labels every resource carries, and whether its owner lives.

A run is one Python process (one pytest process, one xdist worker). Its resources are
labelled with a random run id plus enough about the process (host, boot, pid, start
time) for a later run to tell, without asking anyone, whether the owner is gone.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field

PREFIX = "pytest-dockernet"
SESSION = f"{PREFIX}.session"
TOPOLOGY = f"{PREFIX}.topology"
ROLE = f"{PREFIX}.role"
NAME = f"{PREFIX}.name"
HOST = f"{PREFIX}.host"
BOOT = f"{PREFIX}.boot"
PID = f"{PREFIX}.pid"
STARTED = f"{PREFIX}.started"
PIDNS = f"{PREFIX}.pidns"  # pids are only comparable within one pid namespace
# A keeper's (see keep_warm.py): what a run must match to adopt it, on everything it has...
KEEP_WARM = f"{PREFIX}.keep-warm"
# ...and, on the lease of a keeper a run holds, that run: the keeper lives while it does.
HELD_BY = f"{PREFIX}.held-by"
# ...and on its idle lease, the seconds it lives from its creation.
IDLE_FOR = f"{PREFIX}.idle-for"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _boot_id() -> str:
    return _read("/proc/sys/kernel/random/boot_id")


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process start time in clock ticks since boot ('' where /proc is missing).

    Together with the boot id it tells a live owner from a new process that reuses its pid.
    """
    stat = _read(f"/proc/{pid}/stat")
    # The command name (field 2) may hold spaces and parentheses; fields after it don't.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


@dataclass(frozen=True)
class RunIdentity:
    """The labels that say which process made a resource."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    boot: str = field(default_factory=_boot_id)
    pidns: str = field(default_factory=_pid_namespace)

    @property
    def started(self) -> str:
        return _start_time(self.pid)

    def labels(self) -> dict[str, str]:
        return {
            SESSION: self.run_id,
            HOST: self.host,
            BOOT: self.boot,
            PID: str(self.pid),
            STARTED: self.started,
            PIDNS: self.pidns,
        }

    def maker_is_gone(self, labels: dict[str, str]) -> bool:
        """Whether a process of this very machine (its host name and boot id) and pid
        namespace made a resource with these labels, and has ended. Stricter than
        :meth:`owner_is_gone`, which takes another boot id under this host name for a reboot:
        here that may be another machine of the same name, whose run is alive (for a run's
        lease that has not started yet, see :mod:`.lease`)."""
        same_machine = bool(self.boot) and labels.get(HOST) == self.host and labels.get(BOOT) == self.boot
        return same_machine and bool(self.pidns) and labels.get(PIDNS) == self.pidns and self.owner_is_gone(labels)

    def owner_is_gone(self, labels: dict[str, str]) -> bool:
        """Whether the process that made a resource with these labels has ended.

        Judged by process id, so only resources made on this host and in this pid namespace
        can be judged; anything else is presumed alive (its lease tells, see :mod:`.lease`).
        """
        if labels.get(HOST) != self.host:
            return False
        if labels.get(SESSION) == self.run_id:
            return False
        if labels.get(BOOT) and self.boot and labels[BOOT] != self.boot:
            return True  # the machine has rebooted since
        if labels.get(PIDNS, self.pidns) != self.pidns:
            return False  # its pid means another process here, or none
        try:
            pid = int(labels.get(PID, ""))
        except ValueError:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # someone else's live process
        started = labels.get(STARTED)
        return bool(started) and started != _start_time(pid)

"""The lab's command line, ``python -m pytest_dockernet.lab up|down|status``: a thin layer
over :class:`~pytest_dockernet.lab.Lab` that turns its errors into a message and an exit
status, kept out of the package's ``__init__`` so importing the lab stays free of argparse.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from . import Lab, LabError


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    try:
        yield
    except (LabError, ValueError) as exc:
        print(f"pytest-dockernet lab: {exc}", file=sys.stderr)
        raise SystemExit(2 if isinstance(exc, ValueError) else 1) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_dockernet.lab",
        description="A multi-host Docker lab on this machine: extra engines in network namespaces, "
        "one swarm with the environment's engine (engine 0) as manager. Needs root.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{up,down,status}")
    up = commands.add_parser("up", help="start the engines and the swarm; print the --dockernet-hosts value")
    up.add_argument("--engines", type=int, default=3, help="engines in all, engine 0 included (default 3)")
    up.add_argument("--base-url", help="engine 0 (default: DOCKER_HOST or the default socket)")
    commands.add_parser("down", help="remove everything the lab made")
    commands.add_parser("status", help="say what is up")
    args = parser.parse_args(argv)
    lab: Lab | None
    with _reported():
        if args.command == "up":
            lab = Lab.up(args.engines, base_url=args.base_url)
            if lab.reused:
                print(f"a lab of {lab.engines} engines was up already; reusing it", file=sys.stderr)
            else:
                t = lab.timings
                print(
                    f"lab of {lab.engines} engines up in {t['total']:.1f}s (network {t['network']:.1f}s, "
                    f"engines {t['engines']:.1f}s, swarm {t['swarm']:.1f}s)",
                    file=sys.stderr,
                )
            print(lab.hosts_option)
        elif args.command == "down":
            lab = Lab.load()
            if lab is None:
                print("no lab is up", file=sys.stderr)
            else:
                lab.down()
                print(f"lab of {lab.engines} engines removed", file=sys.stderr)
                if lab.swarm_left.kept_by:
                    print(lab.swarm_left.describe(), file=sys.stderr)
        else:
            try:
                lab = Lab.load()
            except LabError as exc:
                print(f"the lab's state is unreadable: {exc}")
                return 0
            print(lab.describe() if lab is not None else "no lab is up")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

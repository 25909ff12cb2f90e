"""What the fault tests share: an HTTP server command, the host's fault rules, the engine's
view of a container's IPv6 addresses, a topology's fault helpers."""

from __future__ import annotations

import subprocess

from pytest_dockernet.labels import NAME, ROLE

HTTPD = ["httpd", "-f", "-p", "80"]

NO_SHELL = """\
ARG PROBE
FROM ${PROBE} AS tools
FROM scratch
COPY --from=tools /bin/busybox /busybox
ENTRYPOINT ["/busybox", "httpd", "-f", "-p", "80"]
"""


def host_rules() -> list[str]:
    """The host's iptables and ip6tables rules of the plugin's faults (their chains are
    named DN-...). Only those: the host's other rules change as other tests' networks come
    and go."""
    rules = [
        subprocess.run([tool, "-w", "-S"], capture_output=True, text=True, check=True).stdout
        for tool in ("iptables", "ip6tables")
    ]
    return [rule for family in rules for rule in family.splitlines() if "DN-" in rule]


def ipv6_of(container, network) -> str:
    """The container's global IPv6 address on ``network``, as the engine gives it."""
    networks = container.client.api.inspect_container(container.id)["NetworkSettings"]["Networks"]
    address = networks[network.docker_name]["GlobalIPv6Address"]
    assert address, f"{container.name} has no IPv6 address on {network.name}"
    return address


def link_local_of(container, network) -> str:
    """The container's link-local IPv6 address on ``network``, as its kernel has it."""
    interface = container.interface(network)
    code, output = container.exec(["ip", "-o", "-6", "addr", "show", "dev", interface, "scope", "link"])
    assert code == 0 and "fe80:" in output, output
    return output.split()[3].split("/")[0]


def fault_helpers(client, dockernet) -> list[dict]:
    return client.api.containers(filters={"label": [f"{ROLE}=fault-helper", dockernet.context.filters()["label"]]})


def helper_of(client, dockernet, container) -> str:
    """The id of ``container``'s fault helper."""
    (helper,) = client.api.containers(
        filters={"label": [f"{ROLE}=fault-helper", f"{NAME}={container.name}", dockernet.context.filters()["label"]]}
    )
    return helper["Id"]


def run_in_helper(client, helper: str, script: str) -> str:
    """Run ``script`` in a fault helper (the member's namespace), behind the plugin's back."""
    exec_id = client.api.exec_create(helper, ["sh", "-c", script])["Id"]
    output = client.api.exec_start(exec_id).decode()
    assert client.api.exec_inspect(exec_id)["ExitCode"] == 0, output
    return output

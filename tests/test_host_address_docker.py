"""The address Vault sees this machine's connections come from, on the real Docker engine.

The `management` AppRole (host tooling) is bound to the gateways of Vault's networks
(devstack.topology.host_addresses). Here Vault's networks of the phase-1 plan (subnets moved to a
10.<n>.0.0/16 nothing on this host uses) and a busybox stand-in with Vault's addresses are
created, its port 8200 published on 127.0.0.1 as the plan publishes it, and a request from this
machine asks the stand-in (busybox httpd, a CGI script) which address it came from: it must be
one the role is bound to. Every object is named `vaultstrict-<pid>-...`; all traffic stays
between 127.0.0.1 and the test's own container.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
import urllib.request
from collections.abc import Iterator

import pytest

from devstack.services.vault import VAULT
from devstack.settings import Settings
from devstack.topology import attachments, host_addresses, networks
from tests.dockerlab import LABEL, docker, free_octet, lab_overrides, topology_from_plan

pytestmark = pytest.mark.real

PREFIX = f"vaultstrict-{os.getpid()}"
CGI = "#!/bin/sh\necho Content-Type: text/plain\necho\necho $REMOTE_ADDR\n"
SERVE = (
    f"mkdir -p /www/cgi-bin && printf '%s' '{CGI}' >/www/cgi-bin/peer && chmod 755 /www/cgi-bin/peer"
    " && exec httpd -f -p 8200 -h /www"
)


@contextlib.contextmanager
def _vault_stand_in(settings: Settings, image: str) -> Iterator[str]:
    """A container with Vault's attachments, 8200 published on 127.0.0.1; yields its URL."""
    specs = {spec.key: spec for spec in networks(settings)}
    made_networks: list[str] = []
    container = f"{PREFIX}-vault"
    try:
        for attachment in attachments(settings, VAULT):
            spec = specs[attachment.network]
            name = f"{PREFIX}-{spec.key}"
            ipam = ["--subnet", spec.subnet, "--gateway", spec.gateway]
            docker("network", "create", "--driver", "bridge", "--label", f"{LABEL}=vaultstrict", *ipam, name)
            made_networks.append(name)
        first, *others = attachments(settings, VAULT)
        address = ["--ip", first.ipv4_address] if first.ipv4_address else []
        docker(
            "create", "--name", container, "--label", f"{LABEL}=vaultstrict", "--network", made_networks[0],
            *address, "-p", "127.0.0.1::8200", image, "sh", "-c", SERVE,
        )  # fmt: skip
        for network, attachment in zip(made_networks[1:], others, strict=True):
            extra = ["--ip", attachment.ipv4_address] if attachment.ipv4_address else []
            docker("network", "connect", *extra, network, container)
        docker("start", container)
        host_port = docker("port", container, "8200/tcp").split()[0].rsplit(":", 1)[1]
        yield f"http://127.0.0.1:{host_port}/cgi-bin/peer"
    finally:
        docker("rm", "-f", container, check=False)
        for name in made_networks:
            docker("network", "rm", name, check=False)


def _ask(url: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.read().decode().strip()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_vault_sees_the_host_at_an_address_management_is_bound_to(busybox_image: str) -> None:
    overrides = lab_overrides(free_octet(), "phase=1", "profiles=full,reference")
    settings = topology_from_plan(overrides).settings
    bound = set(host_addresses(settings, VAULT))
    assert len(bound) >= 2  # Vault's own tier and each client tier it joins
    with _vault_stand_in(settings, busybox_image) as url:
        # busybox httpd listens on IPv6 too and names an IPv4 peer [::ffff:a.b.c.d]
        peer = _ask(url).removeprefix("[::ffff:").removesuffix("]")
    assert ipaddress.ip_address(peer).version == 4
    assert peer in bound, f"Vault would see this machine as {peer}, the role is bound to {sorted(bound)}"

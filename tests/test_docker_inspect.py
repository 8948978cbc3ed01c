"""What `docker inspect` shows of each container holds no secret, and every published port binds
only the chosen address (the default, and another), at every phase 0-4 for every profile.

The leak check reads each container's inputs with the secrets revealed (tools.engine keeps the
real value inside each Secret: `unwrap`), so a password the program puts in a label or a
healthcheck is found even where Pulumi tracks that field as secret and the masked plan prints
"[secret]". Every field but `uploads` is searched (environment, command, entrypoint, labels,
healthcheck, hostname, log options, networks, mounts, and any field added later): uploads are
files inside the container, where credentials are meant to be (0400, see test_vault_baseline).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import CONTAINER, PlanFactory
from tests.test_vault_baseline import all_secret_values
from tools.engine import PlanRun, Secret, unwrap

PHASES = range(5)
PROFILES = ["minimal", "standard", "full", "reference"]
ALL = "full,reference"
FILES_INSIDE = "uploads"  # not shown by docker inspect
KEY_TYPE = "tls:index/privateKey:PrivateKey"
CHOSEN = "127.0.0.2"  # a bindAddress other than the default (loopback: no acknowledgement needed)


def _key_lines(run: PlanRun) -> set[str]:
    """Each base64 line of every private key: a key pasted anywhere shows one of them."""
    lines: set[str] = set()
    for key in run.by_type(KEY_TYPE):
        for field in ("privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"):
            text = unwrap(key.outputs.get(field)) or ""
            lines.update(line for line in text.splitlines() if len(line) >= 40 and "PRIVATE KEY" not in line)
    return lines


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """(field path, text) for every string in a value, keys included."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [(f"{path}.{k}", str(k)), *_strings(v, f"{path}.{k}")]]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return [(path, str(value))] if value is not None else []


def _visible(record: Any) -> dict[str, Any]:
    return {k: v for k, v in record.inputs.items() if k != FILES_INSIDE}


def _secret_fields(value: Any, path: str) -> list[str]:
    if isinstance(value, Secret):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _secret_fields(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secret_fields(v, f"{path}[{i}]")]
    return []


DEFAULT = "127.0.0.1"
# (phase, profiles, bindAddress): every phase with every profile, and the whole platform at
# phases 1 and 4 (every TLS and migration port there is) with a chosen address. The plans are
# the session's shared ones (the host-mount and policy sweeps read the same), so the sweep costs
# two plan runs of its own.
CASES = [(phase, profiles, DEFAULT) for profiles in [*PROFILES, ALL] for phase in PHASES] + [
    (1, ALL, CHOSEN),
    (4, ALL, CHOSEN),
]
IDS = [f"phase{p}_{profiles.replace(',', '_')}_{a}" for p, profiles, a in CASES]  # for -k


def _run(shared_plan: PlanFactory, phase: int, profiles: str, address: str) -> PlanRun:
    chosen = () if address == DEFAULT else (f"bindAddress={address}",)
    if phase == 0 and not chosen:
        return shared_plan(f"profiles={profiles}")  # the dev stack's phase: the key others use
    return shared_plan(f"profiles={profiles}", f"phase={phase}", *chosen)


@pytest.mark.parametrize(("phase", "profiles", "address"), CASES, ids=IDS)
def test_docker_inspect_shows_no_secret(shared_plan: PlanFactory, phase: int, profiles: str, address: str) -> None:
    run = _run(shared_plan, phase, profiles, address)
    secrets = all_secret_values(run) | _key_lines(run)
    assert len(secrets) > 10
    records = run.by_type(CONTAINER)
    assert records
    for record in records:
        visible = _visible(record)
        # A field Pulumi tracks as secret is one the program fed a secret into.
        assert not _secret_fields(visible, record.name), _secret_fields(visible, record.name)
        for path, text in _strings(unwrap(visible), record.name):
            leaked = sum(s in text for s in secrets)
            if leaked:  # pytest.fail, not assert: the values themselves are never printed
                pytest.fail(f"{path} holds a secret value ({leaked} of them)")


@pytest.mark.parametrize(("phase", "profiles", "address"), CASES, ids=IDS)
def test_every_published_port_binds_the_chosen_address_only(
    shared_plan: PlanFactory, phase: int, profiles: str, address: str
) -> None:
    _assert_bound(_run(shared_plan, phase, profiles, address), address)


def _assert_bound(run: PlanRun, address: str) -> None:
    published = [(r.name, p) for r in run.by_type(CONTAINER) for p in unwrap(r.inputs).get("ports", [])]
    assert published
    wrong = [(name, p.get("external"), p.get("ip")) for name, p in published if p.get("ip") != address]
    assert not wrong, f"published beyond {address}: {wrong}"

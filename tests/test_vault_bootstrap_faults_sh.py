"""Fault injection: Vault's init answer survives every failure of scripts/vault-bootstrap.sh.

Vault answers its init call once; that answer (unseal keys, root token) is the only copy. Each
test first runs the script cleanly and records what it actually does, then runs it again from
scratch once per step after the init call, with that one step failing: every request after
init (an error answer, a connection closed without one), a signal arriving with each request
from init on, and every command the script runs after init. After each run the whole answer
must be on disk, 0600 in a 0700 folder, and a clean rerun must unseal Vault with it. A new step
in the script is covered by these loops without a change here.

Why a fake Vault: a real server cannot be made to fail, drop or be interrupted at one chosen
request of the script's on demand; FakeVault.before_request can.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakevault import DROPPED, FakeVault, Fault, RequestRecord
from tests.test_vault_bootstrap_sh import (
    BUSYBOX,
    CURL,
    DASH,
    GNU_TOOLS,
    VARIANTS,
    Bootstrap,
    Run,
    Variant,
    make_bootstrap,
    make_toolbox,
)

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (CI installs busybox-static)"),
]

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "vault-bootstrap.sh"
INIT = "sys/init"  # PUT (curl) or POST (wget)


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as server:
        yield server


def _steps(log: list[RequestRecord]) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in log]


def _init_number(steps: list[tuple[str, str]]) -> int:
    """The init call's request number (1: the first request)."""
    inits = [n for n, (method, path) in enumerate(steps, 1) if path == INIT and method in ("PUT", "POST")]
    assert len(inits) == 1, steps
    return inits[0]


def clean_run(bootstrap: Bootstrap) -> list[tuple[str, str]]:
    """The requests (method, path) of an undisturbed first run against a new Vault."""
    with FakeVault() as vault:
        run = bootstrap.run(vault.address)
        assert run.returncode == 0, run.stderr
        steps = _steps(vault.log)
    shutil.rmtree(bootstrap.init_file.parent.parent)
    return steps


def _holds(path: Path, answer: dict[str, object]) -> bool:
    try:
        return json.loads(path.read_text()) == answer
    except ValueError:
        return False


def assert_answer_kept(
    bootstrap: Bootstrap, vault: FakeVault, run: Run, what: str, calm: Callable[[], None] = lambda: None
) -> None:
    """Vault's whole init answer is on disk, private, and (once renamed) unseals Vault again in
    a rerun without the fault (``calm`` removes any fault outside the fake)."""
    folder = bootstrap.init_file.parent
    expected = vault.init_result().as_json()
    holders = [p for p in folder.iterdir() if _holds(p, expected)]
    assert holders, f"{what}: the init answer is gone ({run.returncode}: {run.stderr})"
    assert [p.name for p in folder.iterdir()] == [holders[0].name], f"{what}: {list(folder.iterdir())}"
    kept = holders[0]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600, what
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, what
    if kept != bootstrap.init_file:
        # only the rename itself failing may leave it under its temporary name, which is then named
        assert str(kept) in run.stderr, f"{what}: {run.stderr}"
        kept.rename(bootstrap.init_file)
    vault.before_request = None
    calm()
    vault.seal()
    again = bootstrap.run(vault.address)
    assert again.returncode == 0, f"{what}: the kept answer does not unseal Vault: {again.stderr}"
    assert json.loads(again.stdout) == {"root_token": vault.root_token}
    assert not vault.sealed


def fault_at(number: int, fault: Fault) -> Callable[[int, str, str], Fault | None]:
    return lambda n, method, path: fault if n == number else None


FAULTS = {"error": Fault(500), "dropped": Fault(drop=True)}


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
@pytest.mark.parametrize("kind", FAULTS)
def test_every_request_after_init_fails_in_turn(variant: Variant, kind: str, toolboxes: Path, tmp_path: Path) -> None:
    if variant.shell[0] != "busybox" and shutil.which(variant.shell[0]) is None:
        pytest.skip(f"{variant.shell[0]} is not installed")
    bootstrap = make_bootstrap(tmp_path, variant, make_toolbox(toolboxes, variant.toolbox))
    steps = clean_run(bootstrap)
    first = _init_number(steps) + 1
    assert len(steps) >= first + 3, steps  # three unseal keys and the health check at least
    for number in range(first, len(steps) + 1):
        what = f"{kind} at request {number} {steps[number - 1]}"
        with FakeVault() as vault:
            vault.before_request = fault_at(number, FAULTS[kind])
            run = bootstrap.run(vault.address)
            faulted = vault.log[number - 1]
            assert (faulted.method, faulted.path) == steps[number - 1], what
            assert faulted.status == (DROPPED if kind == "dropped" else 500), what
            assert_answer_kept(bootstrap, vault, run, what)
        shutil.rmtree(bootstrap.init_file.parent.parent)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_with_any_request_from_init_on(signum: signal.Signals, busybox_curl: Bootstrap) -> None:
    """The signal reaches the script's shell while Vault handles the request: the shell's trap
    runs once the client has the answer (so with the init call: the keys are just written)."""
    steps = clean_run(busybox_curl)
    for number in range(_init_number(steps), len(steps) + 1):
        what = f"{signum.name} with request {number} {steps[number - 1]}"

        def interrupt(n: int, method: str, path: str, number: int = number) -> None:
            if n == number:
                assert busybox_curl.pid is not None
                os.kill(busybox_curl.pid, signum)

        with FakeVault() as vault:
            vault.before_request = interrupt
            run = busybox_curl.run(vault.address)
            assert run.returncode == 128 + signum.value, what
            assert_answer_kept(busybox_curl, vault, run, what)
        shutil.rmtree(busybox_curl.init_file.parent.parent)


@pytest.fixture
def busybox_curl(toolboxes: Path, tmp_path: Path) -> Bootstrap:
    variant = next(v for v in VARIANTS if v.toolbox == "busybox+curl")
    return make_bootstrap(tmp_path, variant, make_toolbox(toolboxes, variant.toolbox))


# -- every command after the init call fails in turn ---------------------------------------------

# The tools the script may call, less timeout(1), which only ever wraps busybox wget: these runs
# reach Vault with curl.
COMMANDS = tuple(tool for tool in GNU_TOOLS if tool != "timeout")


@dataclass(frozen=True)
class CommandFaults:
    """A PATH of dash shims around busybox applets and curl. Each call takes the next occurrence
    number of its command under a lock (mkdir is atomic: a pipeline's calls run at once) and logs
    it in order; the call named in the `fail` file exits 1 without running the command."""

    path: Path
    state: Path

    def reset(self, fail: str = "") -> None:
        if self.state.exists():
            shutil.rmtree(self.state)
        self.state.mkdir()
        (self.state / "fail").write_text(fail + "\n")
        (self.state / "seq").write_text("0\n")

    def calls(self) -> list[tuple[str, bool]]:
        """(name.occurrence, whether it was the init call), in the order the calls began."""
        lines = (self.state / "log").read_text().split("\n")
        entries = sorted((int(i), call, tag == "init") for i, call, tag in (line.split(" ") for line in lines if line))
        return [(call, init) for _, call, init in entries]


def make_command_faults(directory: Path) -> CommandFaults:
    assert BUSYBOX is not None
    assert DASH is not None
    assert CURL is not None
    directory.mkdir()
    state = directory / "state"
    targets = {name: f"{BUSYBOX} {name}" for name in COMMANDS} | {"curl": CURL}
    for name, target in targets.items():
        shim = directory / name
        shim.write_text(
            f"#!{DASH}\n"
            f"d={state}\n"
            f'until {BUSYBOX} mkdir "$d/lock" 2>/dev/null; do :; done\n'
            'read -r i <"$d/seq"; i=$((i + 1)); echo "$i" >"$d/seq"\n'
            f'n=0; [ ! -f "$d/{name}" ] || read -r n <"$d/{name}"; n=$((n + 1)); echo "$n" >"$d/{name}"\n'
            'case " $* " in *"/v1/sys/init "*) tag=init ;; *) tag=- ;; esac\n'
            f'printf "%s %s %s\\n" "$i" "{name}.$n" "$tag" >>"$d/log"\n'
            f'{BUSYBOX} rmdir "$d/lock"\n'
            'read -r fail <"$d/fail"\n'
            f'[ "$fail" = "{name}.$n" ] && exit 1\n'
            f'exec {target} "$@"\n'
        )
        shim.chmod(0o755)
    return CommandFaults(directory, state)


def test_every_command_after_init_fails_in_turn(tmp_path: Path) -> None:
    if DASH is None or CURL is None:
        pytest.skip("dash and curl are needed (CI installs them)")
    faults = make_command_faults(tmp_path / "shims")
    bootstrap = make_bootstrap(tmp_path, Variant("faults", ("dash",), "faults", "curl/"), str(faults.path))
    faults.reset()
    clean_run(bootstrap)
    calls = faults.calls()
    inits = [i for i, (_, init) in enumerate(calls) if init]
    assert len(inits) == 1, calls
    after = [call for call, _ in calls[inits[0] + 1 :]]
    assert "mv.1" in after, after  # the rename
    assert "curl.3" in after, after  # the first unseal call
    for call in after:
        faults.reset(call)
        with FakeVault() as vault:
            # a failing rm may leave the script's temporary folder behind (and nothing else)
            run = bootstrap.run(vault.address, tmp_left=call.startswith("rm."))
            assert call in [c for c, _ in faults.calls()], f"{call} was not reached"
            assert_answer_kept(bootstrap, vault, run, f"{call} failing", calm=faults.reset)
        shutil.rmtree(bootstrap.init_file.parent.parent)

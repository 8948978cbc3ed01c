"""tools.rollback against the real Pulumi CLI (through the Automation API), on a stack of its own
in a local file backend under the test's folder: the history it reads (version, kind, phase,
git commit) and the network URNs it would remove first are the CLI's own.

The stack's history is made with `pulumi refresh` of an empty stack (no program and no provider
run), its networks with `pulumi stack import`. The rollback's last two steps, `pulumi destroy
--target` and `pulumi up`, need the Docker provider plugin and the Python language host, which
the Go module proxy refused (toolchain/versions.env): this test stops at the confirmation.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.toolchain import binary, environment
from tools.rollback import AutomationStack, execute, main, plan_rollback

pytestmark = pytest.mark.real

STACK_URN = "urn:pulumi:dev::devstack::pulumi:pulumi:Stack::devstack-dev"
PROVIDER_URN = "urn:pulumi:dev::devstack::pulumi:providers:docker::default"
NETWORKS = ("dev-network", "dev-data-network", "dev-vault-network")


def _network_urn(name: str) -> str:
    return f"urn:pulumi:dev::devstack::devstack:network:NetworkTopology$docker:index/network:Network::{name}"


def _run(args: list[str], cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A git checkout with a dev stack whose history is two refreshes (phase 0, then phase 1)
    and whose state holds the networks; returns the checkout and the two commits."""
    pulumi = str(binary("pulumi"))
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    for key, value in environment(home, Path(pulumi).parent).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "a passphrase for this test only")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    (project / "Pulumi.yaml").write_text("name: devstack\nruntime: python\n")
    _run(["git", "init", "-q"], project)
    _run([pulumi, "stack", "init", "dev"], project)
    commits = []
    for phase in ("0", "1"):
        _run([pulumi, "config", "set", "devstack:phase", phase], project)
        _run(["git", "add", "-A"], project)
        _run([*git, "commit", "-q", "-m", f"phase {phase}"], project)
        commits.append(_run(["git", "rev-parse", "HEAD"], project).strip())
        _run([pulumi, "refresh", "--yes", "--skip-preview"], project)
    deployment = json.loads(_run([pulumi, "stack", "export"], project))
    resources = [
        {"urn": STACK_URN, "custom": False, "type": "pulumi:pulumi:Stack"},
        {"urn": PROVIDER_URN, "custom": True, "id": "p", "type": "pulumi:providers:docker", "parent": STACK_URN},
    ]
    for name in NETWORKS:
        resources.append(
            {
                "urn": _network_urn(name),
                "custom": True,
                "id": f"id-{name}",
                "type": "docker:index/network:Network",
                "inputs": {"name": name},
                "outputs": {"name": name},
                "provider": f"{PROVIDER_URN}::p",
                "parent": STACK_URN,
            }
        )
    deployment["deployment"]["resources"] = resources
    (tmp_path / "state.json").write_text(json.dumps(deployment))
    _run([pulumi, "stack", "import", "--file", str(tmp_path / "state.json")], project)
    return project, commits


def test_history_comes_from_the_real_stack(stack: tuple[Path, list[str]]) -> None:
    project, commits = stack
    access = AutomationStack("dev", project)
    # The file backend says version 0 for each update: the rollback numbers them, oldest 1.
    assert [(u.version, u.kind, u.result, u.phase, u.commit, u.dirty) for u in access.history()] == [
        (2, "refresh", "succeeded", "1", commits[1], False),
        (1, "refresh", "succeeded", "0", commits[0], False),
    ]


def test_back_to_phase0_shows_the_change_and_asks_first(
    stack: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    project, commits = stack
    access = AutomationStack("dev", project)
    plan = plan_rollback(access, 1, "dev")
    assert plan.target.commit == commits[0]
    assert plan.changes == ["  devstack:phase: 1 -> 0"]
    assert execute(access, plan, confirm=lambda _prompt: False) is False
    out = capsys.readouterr().out
    assert f"Rolling back to update 1 (phase 0, commit {commits[0]}):" in out
    assert out.endswith("Nothing changed.\n")
    assert len(access.history()) == 2  # nothing ran


def test_the_command_lists_the_real_history(stack: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    project, commits = stack
    assert main(["--stack", "dev"], access=AutomationStack("dev", project)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["version", "kind", "result", "phase", "commit", "started"]
    assert [line.split()[:5] for line in lines[1:]] == [
        ["2", "refresh", "succeeded", "1", commits[1][:10]],
        ["1", "refresh", "succeeded", "0", commits[0][:10]],
    ]

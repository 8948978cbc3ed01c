"""The offline plan command, run as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools import plan as plan_cli
from tools.plan import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.plan", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_tree_output_is_like_a_preview(capsys: pytest.CaptureFixture[str], cached_commands: None) -> None:
    assert main(["--set", "profiles=minimal"]) == 0
    text = capsys.readouterr().out
    assert "pulumi:pulumi:Stack" in text
    assert "devstack-dev" in text
    assert "├─ docker:index/container:Container" in text
    assert "└─ docker:index/remoteImage:RemoteImage" in text
    assert "Outputs:" in text
    assert '"container": "dev-postgres"' in text
    assert re.search(r"\+ \d+ to create", text)


def test_json_schema(capsys: pytest.CaptureFixture[str], cached_commands: None) -> None:
    assert main(["--json", "--set", "profiles=full,reference"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == "devstack-plan/1"
    assert document["project"] == "devstack"
    assert document["stack"] == "dev"
    assert document["config"]["devstack:profiles"] == "full,reference"
    assert set(document) == {"schema", "project", "stack", "config", "resources", "outputs"}
    for resource in document["resources"]:
        assert set(resource) == {
            "urn",
            "type",
            "name",
            "parent",
            "custom",
            "provider",
            "dependencies",
            "property_dependencies",
            "inputs",
            "outputs",
            "options",
        }
        assert set(resource["options"]) == {
            "protect",
            "retain_on_delete",
            "delete_before_replace",
            "ignore_changes",
            "aliases",
            "additional_secret_outputs",
        }
    names = [r["inputs"]["name"] for r in document["resources"] if r["type"] == "docker:index/container:Container"]
    assert len(names) == 27  # phase 0: no node-exporter (backups); the three database exporters (on)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("phase=7", "error: devstack:phase: must be an integer from 0 to 4, got '7'"),
        ("profiles=everything", "error: devstack:profiles: unknown profile 'everything'"),
        ("dataSubnet=172.20.1.0/24", "error: devstack:dataSubnet: 172.20.1.0/24 overlaps vaultSubnet"),
        ("dataSubnet=172.20.2.0/33", "error: devstack:dataSubnet: must be an IPv4 CIDR"),
        ("staticIps=vault=172.20.9.5", "error: devstack:staticIps: vault's address 172.20.9.5 is outside"),
        ("hostPorts=mongodb=5432", "error: devstack:hostPorts: postgres.postgres and mongodb.mongodb both"),
        ("colour=blue", "error: devstack:colour: unknown key"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(override: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--set", override]) == 2  # any other exception would fail the test: no traceback
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(expected)


def test_bad_input_as_a_user_runs_it() -> None:
    """The process itself: exit status 2, nothing on stdout, one line and no traceback on stderr."""
    result = run_cli("--set", "phase=7")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "error: devstack:phase: must be an integer from 0 to 4, got '7'\n"


def test_unknown_stack_is_a_clear_error() -> None:
    result = run_cli("--stack", "nosuch")
    assert result.returncode == 2
    assert result.stderr.startswith("error: no stack file Pulumi.nosuch.yaml")


def test_diff_profile_change_deletes_containers_but_never_volumes(
    capsys: pytest.CaptureFixture[str], cached_commands: None
) -> None:
    assert main(["diff", "--json", "--from", "profiles=standard", "--to", "profiles=minimal"]) == 0
    diff = json.loads(capsys.readouterr().out)
    deleted = {
        c["name"] for c in diff["changes"] if c["action"] == "delete" and c["type"].startswith("docker:index/container")
    }
    assert deleted == {"mysql", "redis-2", "redis-3", "rabbitmq", "mongodb"}
    assert not [c for c in diff["changes"] if c["type"] == "docker:index/volume:Volume"]


UNSEAL = ("command:local:Command", "vault-unseal")  # runs on every `pulumi up`, by design


def test_diff_image_tag_replaces_container(capsys: pytest.CaptureFixture[str], cached_commands: None) -> None:
    assert main(["diff", "--json", "--to", "imageTags=postgres=18.2-bookworm"]) == 0
    changes = {(c["type"], c["name"]): c for c in json.loads(capsys.readouterr().out)["changes"]}
    assert changes.pop(UNSEAL)["action"] == "update"
    assert changes.pop(("docker:index/container:Container", "postgres"))["properties"] == ["image"]
    assert changes.pop(("docker:index/remoteImage:RemoteImage", "postgres-image"))["action"] == "replace"
    # A new Postgres container gets its client accounts set up again.
    assert changes.pop(("command:local:Command", "postgres-accounts"))["properties"] == ["triggers"]
    assert changes == {}


def test_diff_memory_limit_is_an_in_place_update(cached_commands: None) -> None:
    from tools.diff import diff_plans

    before = plan_cli.plan_for("dev", [])
    # Same program, one container's limit changed as a user would by editing the catalog.
    after = plan_cli.plan_for("dev", [], state=before.state)
    container = after.one("docker:index/container:Container", "postgres")
    container.inputs = {**container.inputs, "memory": 4096}
    (change,) = [c for c in diff_plans(before, after).changes if c.name != "vault-unseal"]
    assert change.action == "update"
    assert change.properties == ("memory",)


def test_diff_without_changes_only_reruns_the_unseal_step(
    capsys: pytest.CaptureFixture[str], cached_commands: None
) -> None:
    assert main(["diff", "--from", "phase=0", "--to", "phase=0"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        " ~  command:local:Command vault-unseal [environment]",
        "",
        "Resources: 1 to update",
    ]


def test_the_largest_plan_prints_every_service() -> None:
    result = run_cli("--set", "profiles=full,reference", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    containers = [r for r in plan["resources"] if r["type"] == "docker:index/container:Container"]
    assert len(containers) == 27  # phase 0: no node-exporter (backups); the three database exporters (on)


def test_diff_from_another_stack_file_is_the_pull_request_comment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cached_commands: None
) -> None:
    """What the pull-request workflows post (ci-templates/): the base branch's stack file to this
    checkout's, the same code on both sides."""
    base = tmp_path / "base.yaml"
    base.write_text((ROOT / "Pulumi.dev.yaml").read_text())
    assert main(["diff", "--json", "--from-file", str(base)]) == 0
    assert json.loads(capsys.readouterr().out)["summary"] == {"create": 0, "update": 1, "replace": 0, "delete": 0}
    base.write_text("config:\n  devstack:profiles: minimal\n")
    assert main(["diff", "--json", "--from-file", str(base)]) == 0
    created = {c["name"] for c in json.loads(capsys.readouterr().out)["changes"] if c["action"] == "create"}
    assert {"mysql", "mongodb"} <= created
    assert main(["diff", "--from-file", str(tmp_path / "none.yaml")]) == 2
    assert capsys.readouterr().err == f"error: no stack file {tmp_path / 'none.yaml'}\n"

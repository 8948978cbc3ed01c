"""The documentation cannot drift: its generated parts (the configuration reference, the table
of what runs, the topology picture) match what the code generates now, and every relative link
in README.md and docs/*.md leads to a file and heading that exist."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import PlanFactory
from tools import docs
from tools.graph import mermaid, topology

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
D = docs.EN_DASH
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where links are links."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings, numbered as GitHub and Forgejo number repeats."""
    seen: dict[str, int] = {}
    result = set()
    for line in re.sub(r"```.*?```", "", text, flags=re.DOTALL).splitlines():
        if match := re.match(r"#{1,6} (.+)", line):
            slug = docs.anchor(match[1])
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # a web address or mailto: not ours to check offline
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and (destination.suffix != ".md" or fragment not in anchors(destination.read_text())):
            broken.append(f"{target} (no such heading)")
    return broken


def test_every_generated_block_is_current(cached_commands: None) -> None:
    assert docs.stale() == [], "run python -m tools.docs write"


def test_every_relative_link_and_anchor_resolves() -> None:
    assert len(PAGES) >= 9
    problems = {page.name: broken_links(page) for page in PAGES}
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Title\n\n## Same\n\n## Same\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#title) [repeat](other.md#same-1) [web](https://example.org) [self](#here)\n"
        "# Here\n[gone](nothing.md) [bad](other.md#nope) `[code](ignored.md)`\n```\n[fenced](x.md)\n```\n"
    )
    assert broken_links(page) == ["nothing.md (no such file)", "other.md#nope (no such heading)"]


def test_readme_ends_with_the_docs_index_and_links_every_page() -> None:
    readme = (ROOT / "README.md").read_text()
    index = readme.rsplit("\n## ", 1)[1]
    assert index.startswith("Documentation\n")
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in index, page.name


# --- the configuration reference ------------------------------------------------------------------


def test_the_reference_has_every_key_of_pulumi_yaml_and_a_section_for_each() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    page = (ROOT / "docs" / "configuration.md").read_text()
    for key, spec in declared.items():
        assert f"| [`{key}`](#{key.lower()}) | {spec['type']} |" in page, key
        assert f"\n### `{key}`\n" in page, key


def test_a_changed_schema_makes_the_committed_reference_stale(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    assert docs.config_reference(tmp_path) == docs.config_reference()
    text = (tmp_path / "Pulumi.yaml").read_text()
    (tmp_path / "Pulumi.yaml").write_text(text.replace('default: "standard"', 'default: "minimal"'))
    changed = docs.config_reference(tmp_path)
    assert "| [`profiles`](#profiles) | string | `minimal` |" in changed
    assert changed not in (ROOT / "docs" / "configuration.md").read_text()


# --- what runs ------------------------------------------------------------------------------------


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in docs.services_table().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0]] = cells
    return rows


def test_what_runs_lists_every_service_with_its_ports_by_phase() -> None:
    from devstack.catalog import SERVICES

    rows = _rows()
    assert list(rows) == [s.name for s in SERVICES]
    assert rows["vault"][2] == f"<http://127.0.0.1:8200> (`https://` phase 4)<br><https://127.0.0.1:8300>, phases 1{D}3"
    assert rows["redis-1"][2] == f"`6379` (redis), phases 0{D}3<br>`6390` (tls), phases 1{D}4"
    assert rows["rust-api"][2] == "<http://127.0.0.1:8004>"  # no certificate: plain HTTP at phase 4 too
    assert rows["cadvisor"][2] == "not published"
    assert rows["postgres"][3] == "`secret/postgres`: user, password, database"
    assert rows["pgbouncer"][3] == "`secret/pgbouncer`: users_acl; own accounts on postgres"
    assert rows["forgejo"][3].endswith("; own accounts on postgres")
    assert rows["prometheus"][3] == "none"
    assert rows["vault"][3].startswith("root token:")
    assert rows["vault"][4] == "always"
    assert rows["redis-4"][4] == "standard, full (with `redisReplicas=true`)"


# --- the generated blocks and the command ----------------------------------------------------------


def test_write_brings_a_stale_block_up_to_date_and_check_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text("Intro\n<!-- generated: python -m tools.docs config -->\nold\n<!-- end generated -->\nEnd\n")
    (tmp_path / "README.md").write_text("No generated text.\n")
    assert docs.main(["check"], project_dir=tmp_path) == 1
    assert "docs/page.md: generated text is out of date" in capsys.readouterr().out
    assert docs.main(["write"], project_dir=tmp_path) == 0
    block = f"<!-- generated: python -m tools.docs config -->\n{docs.config_reference()}\n<!-- end generated -->"
    assert page.read_text() == f"Intro\n{block}\nEnd\n"
    assert docs.main(["check"], project_dir=tmp_path) == 0


@pytest.mark.parametrize(
    "command",
    ["python -m tools.docs nothing", "python -m tools.other x", "sh -c true", "python -m tools.plan nothing"],
)
def test_a_block_with_an_unknown_command_is_one_line_and_status_2(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "README.md").write_text(f"<!-- generated: {command} -->\n<!-- end generated -->\n")
    assert docs.main(["check"], project_dir=tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_the_command_prints_the_generated_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert docs.main(["config"]) == 0
    assert capsys.readouterr().out.startswith("| Key | Type | Default | Description |")
    assert docs.main(["services"]) == 0
    assert "| vault | `dev-vault` |" in capsys.readouterr().out
    assert docs.main(["alerts"]) == 0
    assert "| critical (" in capsys.readouterr().out


def test_a_rule_file_that_does_not_parse_is_one_line_for_the_alert_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devstack import monitoring

    (tmp_path / "broken.yml").write_text("groups:\n  - name: x\n    rules: [\n")
    monkeypatch.setattr(monitoring, "ALERTS_DIR", tmp_path)
    assert docs.main(["alerts"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: policies/alerts/broken.yml:")
    assert err.count("\n") == 1


# --- the topology picture -----------------------------------------------------------------------------


def test_the_segmented_picture_shows_tiers_links_vault_and_ports(shared_plan: PlanFactory) -> None:
    chart = mermaid(topology(shared_plan("phase=1", "profiles=full,reference")))
    assert chart.startswith("flowchart LR\n")
    for tier, subnet in (("vault", "172.20.1.0/24"), ("data", "172.20.2.0/24"), ("observability", "172.20.4.0/24")):
        assert f'["dev-{tier}-network · {subnet} · {tier} tier"]' in chart
    # Vault's own box, then its address in each tier it serves, dotted to itself
    assert 'c_dev_vault["dev-vault<br/>172.20.1.5<br/>host 127.0.0.1:8200, 127.0.0.1:8300"]' in chart
    for tier, address in (("data", "172.20.2.5"), ("app", "172.20.3.5"), ("observability", "172.20.4.5")):
        assert f'c_dev_vault_dev_{tier}_network["dev-vault<br/>{address}"]' in chart
        assert f"c_dev_vault_dev_{tier}_network -.-|same container| c_dev_vault" in chart
    assert 'l_dev_link_forgejo_data{{"dev-link-forgejo-data<br/>172.20.128.0/28"}}' in chart
    assert "l_dev_link_forgejo_data --- c_dev_forgejo\n  l_dev_link_forgejo_data --- c_dev_postgres\n" in chart
    assert "l_dev_link_forgejo_data --- c_dev_mysql" not in chart  # Forgejo reaches Postgres only
    assert 'c_dev_cadvisor["dev-cadvisor<br/>172.20.4.50"]' in chart  # not published


def test_the_flat_picture_is_one_network_for_every_tier(shared_plan: PlanFactory) -> None:
    chart = mermaid(topology(shared_plan("phase=0")))
    assert chart.count("subgraph") == 1
    assert '["dev-network · 172.20.0.0/16 · every tier"]' in chart
    assert "same container" not in chart
    assert "{{" not in chart


def test_the_picture_follows_the_plan(plan: PlanFactory) -> None:
    moved = mermaid(topology(plan("phase=1", "staticIps=postgres=172.20.2.99", "hostPorts=postgres=15432")))
    assert 'c_dev_postgres["dev-postgres<br/>172.20.2.99<br/>host 127.0.0.1:15432"]' in moved


def test_plan_graph_command(capsys: pytest.CaptureFixture[str], cached_commands: None) -> None:
    from tools.plan import main

    assert main(["graph", "--markdown", "--set", "profiles=minimal"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("```mermaid\nflowchart LR\n")
    assert out.endswith("\n```\n")
    assert main(["graph", "--set", "phase=9"]) == 2
    assert "devstack:phase" in capsys.readouterr().err


def test_a_container_without_a_static_address_is_drawn_without_one() -> None:
    from tools.graph import Attachment, Net, Node, Topology

    node = Node("dev-x", "app", (Attachment("n", None),), ())
    assert mermaid(Topology((Net("n", "10.0.0.0/24"),), (node,))).splitlines()[2] == '    c_dev_x["dev-x"]'


def test_check_runs_as_a_command() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tools.docs", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_the_sub_steps_are_defined_once_and_end_in_phase_1() -> None:
    """docs/phases.md's table of 1a, 1b and 1c, read as the program reads `features`: each adds
    one of phase 1's features to phase 0, and 1c is phase 1's row of the phase table."""
    import dataclasses

    from devstack.phases import PHASE_FEATURES, resolve_features

    rows = re.findall(r"^\| (1[abc]) \| `([^`]+)` \|", (ROOT / "docs" / "phases.md").read_text(), re.MULTILINE)
    assert [name for name, _ in rows] == ["1a", "1b", "1c"]
    steps = [resolve_features(0, dict(pair.split("=") for pair in text.split(","))) for _, text in rows]
    before = dataclasses.asdict(PHASE_FEATURES[0])
    for step in steps:
        after = dataclasses.asdict(step)
        assert len([k for k in after if after[k] != before[k]]) == 1, (before, after)
        before = after
    assert steps[-1] == PHASE_FEATURES[1]
    for page in PAGES:
        definitions = re.findall(r"^\| 1a \|", page.read_text(), re.MULTILINE)
        assert len(definitions) == (1 if page.name == "phases.md" else 0), page.name


@pytest.mark.parametrize(
    ("script", "message"),
    [
        # troubleshooting.md's quote -> the format string it comes from
        ("scripts/entrypoint.sh", 'fail "Vault at $VAULT_ADDR is not ready after ${wait_seconds}s ($why)"'),
        ("scripts/entrypoint.sh", 'why="HTTP 503: sealed"'),
        ("scripts/vault-bootstrap.sh", "is initialised but its recovery file $init_file is missing; restore that"),
        ("scripts/vault-bootstrap.sh", "prog=vault-bootstrap"),
        ("scripts/entrypoint.sh", "prog=devstack-entrypoint"),
    ],
)
def test_troubleshooting_quotes_devstacks_own_messages(script: str, message: str) -> None:
    """The messages of devstack's own steps the page quotes (Docker's and the CLI's are produced
    for real in tests/test_troubleshooting_real.py)."""
    page = " ".join((ROOT / "docs" / "troubleshooting.md").read_text().split())
    assert message in (ROOT / script).read_text()
    quotes = {
        'why="HTTP 503: sealed"': "(HTTP 503: sealed)",
        "prog=vault-bootstrap": "vault-bootstrap: error: Vault at",
        "prog=devstack-entrypoint": "devstack-entrypoint: Vault at http://vault:8200 is not ready after 60s",
        'fail "Vault at $VAULT_ADDR is not ready after ${wait_seconds}s ($why)"': "is not ready after 60s (HTTP",
    }
    assert quotes.get(message, message.replace("$init_file", "~/.config/devstack/dev/vault-init.json")) in page

"""Our CI and the pull-request workflows users copy (ci-templates/): the templates pass the
GitHub workflow schema and carry every check; the test groups .ci/run names in its log split the
suite without running a test twice; ShellCheck and the secret scan find what they must."""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import CHECK_GROUPS, check_group

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((ROOT / "ci-templates").glob("*/devstack-pr.yml"))
CI_RUN = (ROOT / ".ci" / "run").read_text()
# The three pytest runs, in .ci/run and in every template (there without the real tests).
GROUPS = ("-m tls", "-m network_policy", '-m "not tls and not network_policy"')
# Coverage over the three runs of .ci/run: appended, reported and enforced by the last (issue 17).
THRESHOLD = "--cov-fail-under=95"
COVERAGE = (
    "--cov --cov-branch --cov-report=",
    "--cov --cov-branch --cov-append --cov-report=",
    f"--cov --cov-branch --cov-append {THRESHOLD}",
)


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the GitHub workflow schema it ships (no network)."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def run_blocks(template: Path) -> list[str]:
    document = yaml.safe_load(template.read_text())
    return [step["run"] for job in document["jobs"].values() for step in job["steps"] if "run" in step]


def test_there_is_a_template_for_forgejo_and_for_github() -> None:
    assert [t.parent.name for t in TEMPLATES] == ["forgejo", "github"]


def test_the_templates_pass_the_github_workflow_schema() -> None:
    result = check_jsonschema(*TEMPLATES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_refuses_a_broken_workflow(tmp_path: Path) -> None:
    document = yaml.safe_load(TEMPLATES[1].read_text())
    document["jobs"]["checks"]["steps"][0] = {"uses": "actions/checkout@v4", "run": "true"}  # both at once
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(document))
    result = check_jsonschema(broken)
    assert result.returncode == 1
    assert "broken.yml" in result.stdout


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.parent.name)
def test_each_template_runs_every_check(template: Path) -> None:
    text = "\n".join(run_blocks(template))
    for check in (
        "bash .ci/shellcheck",
        '"$gitleaks" git --no-banner --redact --config .gitleaks.toml .',
        'pytest -m "tls and not real"',
        'pytest -m "network_policy and not real"',
        'pytest -m "not real and not tls and not network_policy"',
        ".venv/bin/python -m tools.plan diff --from-file",
        "pulumi preview --policy-pack policies/crossguard --policy-pack-config",
        ".venv/bin/ruff check .",
        ".venv/bin/pyright",
    ):
        assert check in text, (template, check)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.parent.name)
def test_no_expression_is_pasted_into_a_script(template: Path) -> None:
    """A pull request's data reaches a script only through env: `${{ }}` inside `run:` is the
    workflow-injection hole (a branch name is code there)."""
    for block in run_blocks(template):
        assert "${{" not in block, block


@pytest.mark.real
@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed (Debian package shellcheck)"
)
@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.parent.name)
def test_the_templates_scripts_pass_shellcheck(template: Path) -> None:
    for block in run_blocks(template):
        result = subprocess.run(
            ["shellcheck", "--shell=bash", "-"], input=block, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, block + result.stdout


# --- the test groups .ci/run names ----------------------------------------------------------


def test_ci_runs_shellcheck_and_the_secret_scan_before_the_tests() -> None:
    stages = [
        "bash .ci/shellcheck",
        'gitleaks=$(bash .ci/gitleaks | tail -n 1)\n"$gitleaks" git --no-banner --redact --config .gitleaks.toml .',
        "python -m pytest -m tls",
    ]
    positions = [CI_RUN.find(stage) for stage in stages]
    assert -1 not in positions, positions
    assert positions == sorted(positions)


def test_ci_runs_each_group_once_and_together_they_are_the_suite() -> None:
    runs = [line.strip() for line in CI_RUN.splitlines() if line.strip().startswith("python -m pytest")]
    assert runs == [f"python -m pytest {group} {cov} || status=1" for group, cov in zip(GROUPS, COVERAGE, strict=True)]
    assert set(CHECK_GROUPS) == {"tls", "network_policy"}


def test_every_tls_and_network_test_module_is_in_its_group() -> None:
    modules = [p.stem for p in (ROOT / "tests").glob("test_*.py")]
    for module in modules:
        group = check_group(module)
        if "tls" in module or "https" in module or module == "test_pki":
            assert group == "tls", module
        elif "segmentation" in module or "isolation" in module or "exposure" in module:
            assert group == "network_policy", module
        else:
            assert group is None, module
    for names in CHECK_GROUPS.values():
        for name in names:
            assert any(m.startswith(name) for m in modules), f"{name} names no test module"


# --- ShellCheck and the secret scan, for real -------------------------------------------------


def _copy_repo(tmp_path: Path, *files: str) -> Path:
    repo = tmp_path / "repo"
    for name in files:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, repo / name)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def _commit(repo: Path) -> None:
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "t"], check=True
    )


@pytest.mark.real
@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed (Debian package shellcheck)"
)
def test_shellcheck_checks_busybox_scripts_as_posix_sh(tmp_path: Path) -> None:
    repo = _copy_repo(tmp_path, ".ci/shellcheck")
    (repo / "scripts").mkdir()
    (repo / "scripts" / "ok.sh").write_text('#!/bin/sh\nset -eu\nprintf "%s\\n" "$1"\n')
    (repo / "tool").write_text('#!/usr/bin/env bash\nset -euo pipefail\nx=(a b)\nprintf "%s\\n" "${x[@]}"\n')
    _commit(repo)
    passed = subprocess.run(["bash", ".ci/shellcheck"], cwd=repo, capture_output=True, text=True, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "POSIX sh (busybox sh, dash): scripts/ok.sh" in passed.stdout
    assert "bash: .ci/shellcheck tool" in passed.stdout
    # A bash array in a busybox script: fine for bash, an error for POSIX sh.
    (repo / "scripts" / "ok.sh").write_text('#!/bin/sh\nx=(a b)\necho "${x[0]}"\n')
    (repo / "scripts" / "plain.sh").write_text("echo no shebang\n")
    _commit(repo)
    failed = subprocess.run(["bash", ".ci/shellcheck"], cwd=repo, capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert "scripts/plain.sh ends in .sh but starts with neither" in failed.stderr
    (repo / "scripts" / "plain.sh").unlink()
    _commit(repo)
    failed = subprocess.run(["bash", ".ci/shellcheck"], cwd=repo, capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert "SC3030" in failed.stdout  # "In POSIX sh, arrays are undefined."


def _gitleaks() -> str:
    path = subprocess.run(
        ["bash", str(ROOT / ".ci" / "gitleaks"), "--path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not Path(path).exists():
        pytest.skip("gitleaks is not built: run `bash .ci/gitleaks` (needs Go and the module proxy)")
    return path


def _planted_api_key() -> str:
    """A value gitleaks' generic rule must report, made at run time (one committed here would
    leak). Random hex is not enough: about 1 in 5 draws of `token_hex(16)` falls under the
    rule's entropy floor of 3.5 bits, or contains a stopword such as "dead" or "cafe". Sixteen
    distinct letters alternating with digits have 4.6 bits by construction, and no run of two
    letters, so none of the rule's stopwords (all with two or more letters in a row) can occur."""
    pick = secrets.SystemRandom()
    letters = pick.sample(string.ascii_letters, 16)
    digits = pick.sample(string.digits, 10) + pick.sample(string.digits, 6)
    pick.shuffle(digits)
    return "".join(letter + digit for letter, digit in zip(letters, digits, strict=True))


@pytest.mark.real
def test_the_secret_scan_allows_exactly_the_listed_values(tmp_path: Path) -> None:
    """The allowlist's three exceptions pass where they are; the same file with a real private
    key, and an API-key-looking value beside the Pulumi constants, fail."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    files = (".gitleaks.toml", "tools/engine/values.py", "tools/engine/tls_mocks.py", "tests/test_tls_mocks.py")
    repo = _copy_repo(tmp_path, *files)
    _commit(repo)
    scan = [_gitleaks(), "git", "--no-banner", "--redact", "--config", ".gitleaks.toml", "."]
    clean = subprocess.run(scan, cwd=repo, capture_output=True, text=True, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with (repo / "tests" / "test_tls_mocks.py").open("a") as test_file:
        test_file.write(f"\nFIXTURE = '''{key.decode()}'''\n")
    planted = _planted_api_key()
    with (repo / "tools" / "engine" / "values.py").open("a") as values:
        values.write(f'\nAPI_KEY = "{planted}"\n')
    _commit(repo)
    leaked = subprocess.run([*scan, "-v"], cwd=repo, capture_output=True, text=True, check=False)
    assert leaked.returncode == 1
    found = [line.split(":", 1)[1].strip() for line in leaked.stdout.splitlines() if line.startswith("RuleID:")]
    assert sorted(found) == ["generic-api-key", "private-key"], leaked.stdout
    assert planted not in leaked.stdout  # --redact: the log never shows it


def test_ci_enforces_the_readmes_coverage_threshold_over_the_whole_suite() -> None:
    """docs/testing.md's test command is one run of the whole suite; CI's three runs add up to
    the same suite and the same threshold."""
    readme = (ROOT / "docs" / "testing.md").read_text()
    command = re.search(r"^python3 -m venv .*$", readme, re.M)
    assert command is not None
    arguments = shlex.split(command.group(0).rsplit("&&", 1)[1])
    assert arguments[arguments.index("pytest") + 1 :] == ["--cov", "--cov-branch", THRESHOLD]
    assert CI_RUN.count(THRESHOLD) == 1

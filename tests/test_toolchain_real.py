"""The real Pulumi CLI that .ci/toolchain builds: it reports the version we pinned, and it accepts
devstack's project (Pulumi.yaml's typed config declarations) with the dev stack's values for every
phase and profile, on a local file backend inside the test's folder.

Without the Python language host (the module proxy refused it: toolchain/versions.env) the CLI
cannot run the program, so `pulumi preview` ends right after the CLI has validated the stack's
config against the project's declarations: the tests check it got that far and no further
error came first, and that a value of the wrong type is refused at that very step."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_stackconfig_types import CASES, offline_accepts, write_stack
from tests.toolchain import ROOT, SCRIPT, bin_dir_for_these_versions, binary, environment, read_versions
from tools.stackconfig import load_stack_config

pytestmark = pytest.mark.real

NO_LANGUAGE_HOST = "no language plugin 'pulumi-language-python' found"


def _pulumi(pulumi: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = project.parent
    env = environment(home, pulumi.parent) | {"PULUMI_CONFIG_PASSPHRASE_FILE": str(home / "pass")}
    return subprocess.run(
        [str(pulumi), *args, "--non-interactive"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project with the dev stack created on a file backend under tmp_path."""
    pulumi = binary("pulumi")
    folder = tmp_path / "devstack"
    folder.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(ROOT / name, folder / name)
    (tmp_path / "pass").write_text("a passphrase for this test only\n")
    created = _pulumi(pulumi, folder, "stack", "select", "--create", "dev")
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "state" / ".pulumi" / "stacks" / "devstack" / "dev.json").is_file()
    return folder


def test_pulumi_version_is_the_pinned_cli(tmp_path: Path) -> None:
    pulumi = binary("pulumi")
    env = environment(tmp_path, pulumi.parent)
    result = subprocess.run([str(pulumi), "version"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "v" + read_versions()["PULUMI_CLI"]


def _preview_error(pulumi: Path, project: Path) -> str:
    result = _pulumi(pulumi, project, "preview")
    assert result.returncode != 0  # the program cannot run without the language host
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stdout + result.stderr
    return errors[0]


@pytest.mark.parametrize("profiles", ["minimal", "standard", "full,reference"])
@pytest.mark.parametrize("phase", ["0", "1", "2", "3", "4"])
def test_real_cli_accepts_the_stack_config(project: Path, phase: str, profiles: str) -> None:
    pulumi = binary("pulumi")
    if (pulumi.parent / "pulumi-language-python").exists():
        pytest.skip("the language host is built: the real preview tests cover this")
    for key, value in (("phase", phase), ("profiles", profiles)):
        assert _pulumi(pulumi, project, "config", "set", f"devstack:{key}", value).returncode == 0
    assert NO_LANGUAGE_HOST in _preview_error(pulumi, project)


def test_real_cli_refuses_a_value_of_the_wrong_type(project: Path) -> None:
    """The step the test above relies on does check: Pulumi.yaml declares phase an integer."""
    pulumi = binary("pulumi")
    assert _pulumi(pulumi, project, "config", "set", "devstack:phase", "one").returncode == 0
    error = _preview_error(pulumi, project)
    assert "validating stack config" in error
    assert "'phase' must be of type 'integer'" in error


def test_a_second_run_finds_everything_built_and_prints_the_bin_directory_last() -> None:
    pulumi = binary("pulumi")
    if bin_dir_for_these_versions() != pulumi.parent:
        pytest.skip("DEVSTACK_TOOLCHAIN_BIN names another folder than this checkout's cache")
    started = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.splitlines()[-1]) == pulumi.parent
    assert "pulumi: cached" in result.stderr
    assert elapsed < 30, f"a run with everything built took {elapsed:.0f} s"


@pytest.fixture(scope="module")
def bare_stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One dev stack for the type table, and its encryptionsalt line (the CLI writes it into
    Pulumi.dev.yaml and needs it back each time the test rewrites the file)."""
    pulumi = binary("pulumi")
    folder = tmp_path_factory.mktemp("types") / "devstack"
    folder.mkdir()
    write_stack(folder, "phase", "0")
    (folder.parent / "pass").write_text("a passphrase for this test only\n")
    created = _pulumi(pulumi, folder, "stack", "select", "--create", "dev")
    assert created.returncode == 0, created.stderr
    salt = [
        line for line in (folder / "Pulumi.dev.yaml").read_text().splitlines() if line.startswith("encryptionsalt:")
    ]
    assert len(salt) == 1
    return folder, salt[0] + "\n"


@pytest.mark.parametrize(("key", "text", "accepted"), CASES)
def test_real_cli_and_offline_plan_agree_on_config_types(
    bare_stack: tuple[Path, str], key: str, text: str, accepted: bool
) -> None:
    pulumi = binary("pulumi")
    folder, salt = bare_stack
    write_stack(folder, key, text, extra=salt)
    error = _preview_error(pulumi, folder)
    if NO_LANGUAGE_HOST in error:
        real = True
    else:
        assert f"configuration key '{key}' must be of type" in error, error
        real = False
    assert (real, offline_accepts(folder)) == (accepted, accepted)


def test_the_cli_rewrites_the_stack_file_without_changing_what_the_plan_reads(project: Path) -> None:
    """`pulumi stack select --create dev` rewrites Pulumi.dev.yaml in the checkout: it adds the
    user's encryptionsalt (their passphrase's salt, which no CLI option keeps out of the file) and
    quotes numbers. The tracked file is already in the CLI's form, so the salt line is the one
    change a user's first run leaves; the values the offline plan and the program read stay."""
    rewritten = (project / "Pulumi.dev.yaml").read_text().splitlines()
    tracked = (ROOT / "Pulumi.dev.yaml").read_text().splitlines()
    added = [line for line in rewritten if line not in tracked]
    assert len(added) == 1
    assert added[0].startswith("encryptionsalt: v1:")
    assert [line for line in rewritten if line != added[0]] == tracked
    assert load_stack_config("dev", project_dir=project) == load_stack_config("dev", project_dir=ROOT)

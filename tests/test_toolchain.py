"""toolchain/versions.env against requirements.txt and the wrapper modules: the CLI that
.ci/toolchain builds is the one the Python SDK pin can run under, and every plugin our program
uses is either built at its SDK's version or recorded as refused by the module proxy."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.toolchain import ROOT, SCRIPT, bin_dir_for_these_versions, read_versions

REQUIREMENTS = ROOT / "requirements.txt"
PULUMI_GO_MOD = ROOT / "toolchain" / "pulumi" / "go.mod"
# What the real `pulumi preview` needs beside the CLI, as versions.env names it.
NEEDED = ("LANGUAGE_PYTHON", "COMMAND", "TLS", "RANDOM", "DOCKER", "VAULT", "VAULT_SERVER")
MODULE_AT_VERSION = re.compile(r"^[a-z0-9.-]+(/[A-Za-z0-9._-]+)+@v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in REQUIREMENTS.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"requirements.txt pins exact versions: {line!r}"
            pins[name.strip().lower()] = version.strip()
    return pins


def _version(text: str) -> tuple[int, ...]:
    assert re.fullmatch(r"\d+\.\d+\.\d+", text), text
    return tuple(int(part) for part in text.split("."))


def test_versions_file_parses_into_keys_and_values() -> None:
    versions = read_versions()
    assert set(versions) >= {"PULUMI_CLI"}
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", key) for key in versions)


def test_cli_is_never_older_than_the_python_sdk_and_shares_its_major() -> None:
    cli = _version(read_versions()["PULUMI_CLI"])
    sdk = _version(_pins()["pulumi"])
    assert cli[0] == sdk[0]
    assert cli >= sdk, "the engine must be at least as new as the SDK the program runs with"


def test_cli_wrapper_module_requires_pkg_and_sdk_at_the_cli_version() -> None:
    version = "v" + read_versions()["PULUMI_CLI"]
    go_mod = PULUMI_GO_MOD.read_text()
    for module in ("github.com/pulumi/pulumi/pkg/v3", "github.com/pulumi/pulumi/sdk/v3"):
        required = re.findall(rf"^\s*{re.escape(module)} (\S+)", go_mod, flags=re.MULTILINE)
        assert required == [version], (module, required)
    assert "tool github.com/pulumi/pulumi/pkg/v3/cmd/pulumi" in go_mod
    # The script stamps the same version into the binary.
    assert "version.Version=v$PULUMI_CLI" in SCRIPT.read_text()


def test_the_engine_replay_uses_the_engine_of_the_cli() -> None:
    """tests/enginecheck builds the engine the CLI runs: the same pkg/v3 and sdk/v3."""
    version = "v" + read_versions()["PULUMI_CLI"]
    go_mod = (ROOT / "tests" / "enginecheck" / "go.mod").read_text()
    for module in ("github.com/pulumi/pulumi/pkg/v3", "github.com/pulumi/pulumi/sdk/v3"):
        required = re.findall(rf"^\s*{re.escape(module)} (\S+)", go_mod, flags=re.MULTILINE)
        assert required == [version], (module, required)


def test_every_plugin_the_program_pins_is_built_at_its_version_or_recorded_as_refused() -> None:
    # A built component has KEY=version in versions.env, a refused one REFUSED_KEY=module@version...
    versions = read_versions()
    providers = {name.removeprefix("pulumi-"): pin for name, pin in _pins().items() if name != "pulumi"}
    assert providers, "requirements.txt pins the provider SDKs"
    for name, pin in providers.items():
        key = name.upper().replace("-", "_")
        assert key in NEEDED, f"versions.env has no entry for the pulumi-{name} plugin"
        if key in versions:
            assert versions[key] == pin, f"pulumi-{name}: the plugin and the Python SDK must match"
    for key in NEEDED:
        refused = versions.get(f"REFUSED_{key}", "").split()
        assert (key in versions) != bool(refused), f"{key}: either built or recorded as refused"
        for entry in refused:
            assert MODULE_AT_VERSION.match(entry), f"REFUSED_{key}: not module@version: {entry!r}"


def test_the_cache_folder_changes_with_any_version_or_wrapper_file(tmp_path: Path) -> None:
    """`--bin-dir` builds nothing; a copy of the script and toolchain/ shows the key following
    versions.env and the wrapper modules, so a changed version never reuses an old binary."""
    copy = tmp_path / "repo"
    (copy / ".ci").mkdir(parents=True)
    shutil.copy(SCRIPT, copy / ".ci" / "toolchain")
    shutil.copytree(ROOT / "toolchain", copy / "toolchain")
    script = copy / ".ci" / "toolchain"
    first = bin_dir_for_these_versions(script)
    if first is None:
        pytest.skip("Go is not installed: the cache is keyed by `go version`")
    assert first == bin_dir_for_these_versions(script)
    assert first.name == "bin"
    seen: set[Path | None] = {first}
    for changed in (copy / "toolchain" / "versions.env", copy / "toolchain" / "pulumi" / "go.sum"):
        changed.write_text(changed.read_text() + "\n")
        seen.add(bin_dir_for_these_versions(script))
    assert len(seen) == 3

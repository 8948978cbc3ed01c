"""tools.backup without servers: the command line, its one-line errors, the metric, the
management login, and the accounts each store's module creates from the backups feature.

The management login runs against tests/fakevault.py because no Vault binary can be had here
(the module proxy refused it): the fake holds the reviewed management.hcl policy and AppRole."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from components.identity import policy_document
from devstack.accounts import Account, AccountKind
from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.credentials import MANAGEMENT, management_accounts, management_keys
from devstack.model import Part
from devstack.services.mongodb import mongo_roles
from devstack.services.mysql import mysql_setup_sql
from devstack.services.postgres import postgres_setup_sql
from devstack.services.redis import BACKUP as REDIS_BACKUP
from devstack.services.redis import users_file
from tests.conftest import PlanFactory
from tests.fakevault import FakeVault
from tests.shipped import vault_secrets
from tools import backup
from tools.access import access_matrix


def test_management_has_backup_and_restore_accounts_per_system() -> None:
    accounts = management_accounts(SERVICES)
    pairs = {(a.system, a.user) for a in accounts}
    for system in ("postgres", "mysql", "mongodb", "redis"):
        assert (system, "devstack_backup") in pairs
        assert (system, "devstack_restore") in pairs
    redis = next(a for a in accounts if a.system == "redis")
    assert set(redis.servers) >= {"redis-1", "redis-2", "redis-3"}  # every node holds its own RDB
    assert "postgres_backup_password" in management_keys(accounts)
    assert all(a.client == MANAGEMENT for a in accounts)


def test_management_reads_only_its_own_path_whatever_the_phase(shared_plan: PlanFactory) -> None:
    for run in (shared_plan("phase=2"), shared_plan("phase=4")):
        management = access_matrix(run)["management"]
        assert management.reads == ["secret/data/management"]
        assert management.flags == []


def test_backups_feature_off_means_no_management_accounts() -> None:
    # the passwords are data (in every phase); the servers hold the accounts from phase 2 on
    assert vault_secrets("phase=1")["management"] == vault_secrets("phase=2")["management"]
    assert "devstack_backup" not in vault_secrets("phase=1")["redis-1"]["users_acl"]
    assert "devstack_backup" in vault_secrets("phase=2")["redis-1"]["users_acl"]


def test_postgres_script_gives_backup_read_only_and_restore_ownership() -> None:
    accounts = [
        Account("forgejo", "p1", database="forgejo"),
        Account("devstack_backup", "p2", kind=AccountKind.BACKUP),
        Account("devstack_restore", "p3", kind=AccountKind.RESTORE),
    ]
    script = postgres_setup_sql(accounts)
    assert 'GRANT "pg_read_all_data" TO "devstack_backup"' in script
    assert 'ALTER ROLE "devstack_backup" SET default_transaction_read_only = on;' in script
    assert 'GRANT "forgejo" TO "devstack_restore"' in script
    assert 'ALTER ROLE "devstack_restore" CREATEDB;' in script
    assert "SUPERUSER" not in script.replace("NOSUPERUSER", "")


def test_mysql_script_grants_per_client_database_only() -> None:
    accounts = [
        Account("reference_api", "p1", database="reference_api"),
        Account("devstack_backup", "p2", kind=AccountKind.BACKUP),
        Account("devstack_restore", "p3", kind=AccountKind.RESTORE),
    ]
    script = mysql_setup_sql(accounts)
    assert "GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES ON `reference\\_api`.* TO 'devstack_backup'@'%';" in script
    assert "ON *.* TO 'devstack_backup'" not in script
    for name in ("reference\\_api", "reference\\_api\\_devstack\\_restore", "reference\\_api\\_devstack\\_old"):
        assert f"GRANT ALL PRIVILEGES ON `{name}`.* TO 'devstack_restore'@'%';" in script


def test_mongodb_backup_and_restore_roles() -> None:
    assert mongo_roles(Account("b", "p", kind=AccountKind.BACKUP)) == [{"role": "backup", "db": "admin"}]
    assert mongo_roles(Account("r", "p", kind=AccountKind.RESTORE)) == [{"role": "restore", "db": "admin"}]


def test_redis_backup_user_may_only_replicate_and_count() -> None:
    clients = [a for a in management_accounts(SERVICES) if a.system == "redis"]
    text = users_file("admin", [(client, "secret") for client in clients])
    lines = {x.split()[1]: x for x in text.splitlines()}
    assert "resetkeys resetchannels -@all" in lines["devstack_backup"]
    assert "+sync" in lines["devstack_backup"]
    assert "~*" in lines["devstack_restore"]
    assert "+restore" in lines["devstack_restore"]
    for line in (lines["devstack_backup"], lines["devstack_restore"]):
        assert "+get" not in line
        assert "+@read" not in line
    assert "secret" not in text  # a SHA-256 verifier only


def test_store_scripts_never_carry_a_password() -> None:
    part = Part("x.dump", "x")
    for service in SERVICES:
        spec = service.backup
        if spec is None:
            continue
        scripts = [spec.parts, spec.dump(part), spec.fingerprint(part, True), spec.restore(part), spec.discard(part)]
        scripts.append(spec.swap(part))
        scripts += [spec.pause.stop, spec.pause.resume] if spec.pause is not None else []
        for script in scripts:
            assert "password" not in script or "read -r password" in script or '"$password"' in script


# --- the tool -------------------------------------------------------------------------------------


def test_restic_missing_is_one_line_saying_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(backup.shutil, "which", lambda name: None)
    assert backup.main(["list"]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {backup.INSTALL_RESTIC}\n"
    assert "apt-get install restic" in err


def test_no_stack_running_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(backup, "running", lambda container: False)
    assert backup.main(["--repo", str(tmp_path / "r"), "create"]) == 1
    assert capsys.readouterr().err == "error: no stack running: no store's container is up (`pulumi up` first)\n"


@pytest.mark.real  # the real restic
def test_no_repository_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if backup.shutil.which("restic") is None:
        pytest.skip("restic missing: apt-get install restic")
    (tmp_path / "r.key").write_text("k\n")
    assert backup.main(["--repo", str(tmp_path / "r"), "list"]) == 1
    assert capsys.readouterr().err.startswith("error: no backup repository at ")


@pytest.mark.parametrize("command", ["create", "list", "verify", "restore", "prune"])
def test_each_subcommand_has_help(command: str) -> None:
    result = subprocess.run(
        [".venv/bin/python", "-m", "tools.backup", command, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert backup.HELP[command] in " ".join(result.stdout.split())


def test_metric_follows_the_contract() -> None:
    text = backup.render_metric({"postgres": 1764500000.7, "redis-1": 1764400000})
    assert text.splitlines() == [
        "# HELP devstack_backup_last_success_timestamp_seconds Unix time of the store's last backup that completed"
        " and was recorded.",
        "# TYPE devstack_backup_last_success_timestamp_seconds gauge",
        'devstack_backup_last_success_timestamp_seconds{store="postgres"} 1764500000',
        'devstack_backup_last_success_timestamp_seconds{store="redis-1"} 1764400000',
    ]


def test_metric_without_node_exporter_is_one_line() -> None:
    catalog = {k: v for k, v in SERVICES_BY_NAME.items() if k != "node-exporter"}
    with pytest.raises(backup.BackupError, match=r"^no node-exporter service in the catalog"):
        backup.publish_metric("x", catalog)


def test_restic_times_parse() -> None:
    assert backup._unix("2026-11-30T18:00:00.123456789Z") == pytest.approx(1796061600.123456)
    assert backup._unix("2026-11-30T19:00:00.5+01:00") == pytest.approx(1796061600.5)


def test_management_login_reads_its_own_path_from_a_vault() -> None:
    with FakeVault() as vault:
        vault.ready()
        vault.enable_approle()
        vault.load_policy_hcl("management", policy_document("management"))
        vault.create_role("management", ["management"])
        vault.put_secret("management", {"postgres_backup_password": "s3cret"})
        vault.put_secret("postgres", {"password": "not-yours"})
        outputs = {
            "vaultAddress": vault.address,
            "managementRoleId": vault.role_id("management"),
            "managementSecretId": vault.create_secret_id("management"),
        }
        assert backup.management_secret(outputs) == {"postgres_backup_password": "s3cret"}
        with pytest.raises(backup.BackupError, match=r"^Vault refused auth/approle/login"):
            backup.management_secret({**outputs, "managementSecretId": "wrong"})
    with pytest.raises(backup.BackupError, match="does not answer"):
        backup.management_secret(outputs)
    with pytest.raises(backup.BackupError, match="no management identity"):
        backup.management_secret({"vaultAddress": "http://127.0.0.1:9"})


def test_store_run_reports_the_scripts_last_error_line() -> None:
    store = backup.Store("redis-1", REDIS_BACKUP, backup.LocalExecutor({}), {})
    assert store.run("read -r line; printf '%s' \"$line\"", "devstack_backup") == ""
    with pytest.raises(backup.BackupError, match=r"^redis-1: boom$"):
        store.run("echo one >&2; echo boom >&2; exit 3", None)
    assert json.loads(store.run("cat", None, [b'{"a":', b" 1}"])) == {"a": 1}
    assert io  # keeps the import list honest for pyright


def test_restic_dying_of_a_full_disk_mid_dump_is_one_line(tmp_path: Path) -> None:
    """A stand-in restic that fails with ENOSPC before reading a byte: the real one against a
    real full disk (tests/test_backup_real.py) may or may not have read the whole pipe when it
    dies, so only a stand-in breaks the pipe every time."""
    from dataclasses import replace

    fake = tmp_path / "restic"
    fake.write_text("#!/bin/sh\necho 'Fatal: write /repo/data/x: no space left on device' >&2\nexit 1\n")
    fake.chmod(0o755)
    restic = backup.Restic(tmp_path / "repo", tmp_path / "key", str(fake))
    big = replace(REDIS_BACKUP, dump=lambda part: "read -r _; head -c 8000000 /dev/zero")
    store = backup.Store("redis-1", big, backup.LocalExecutor({}), {})
    with pytest.raises(backup.BackupError) as failed:
        backup._stream_into_restic(store, Part("dump.rdb", ""), restic, "id")
    assert str(failed.value).startswith(f"store redis-1: the disk holding the backup repository {tmp_path}/repo")
    assert "is full: free space there" in str(failed.value)


def test_a_backup_without_its_manifest_is_never_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """A create that stopped (a full disk in its second store) left snapshots but no manifest."""
    restic = backup.Restic(Path("/repo"), Path("/key"))
    done = {"time": "1", "files": {"redis-1/dump.rdb": "a1", backup.MANIFEST: "a2"}}
    found = {"old": done, "partial": {"time": "2", "files": {"redis-1/dump.rdb": "b1"}}}
    monkeypatch.setattr(backup, "backups", lambda _: found)
    assert backup._pick(restic, None) == ("old", done)
    assert backup._pick(restic, "partial")[0] == "partial"  # asked for by name, it is tried
    found.pop("old")
    with pytest.raises(backup.BackupError, match=r"^no complete backup in /repo"):
        backup._pick(restic, None)


@pytest.mark.real  # the real shellcheck, as tests/test_ci.py's
def test_store_scripts_pass_shellcheck_as_posix_sh(tmp_path: Path) -> None:
    """They run under busybox sh, dash or bash in the containers: POSIX sh, no warning."""
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck missing: apt-get install shellcheck")
    part, files = Part("x.dump", "x"), []
    for service in SERVICES:
        spec = service.backup
        if spec is None:
            continue
        scripts = [spec.parts, spec.dump(part), spec.fingerprint(part, False), spec.fingerprint(part, True)]
        scripts += [spec.restore(part), spec.swap(part), spec.discard(part), spec.version]
        scripts += [spec.pause.stop, spec.pause.resume] if spec.pause is not None else []
        for index, script in enumerate(scripts):
            path = tmp_path / f"{service.name}-{index}.sh"
            path.write_text("#!/bin/sh\n" + script)
            files.append(str(path))
    result = subprocess.run(
        ["shellcheck", "--shell=sh", "--severity=warning", *files], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_the_disk_full_line_is_the_one_reported_not_the_hint_after_it() -> None:
    store = backup.Store("postgres", REDIS_BACKUP, backup.LocalExecutor({}), {})
    script = (
        "echo 'ERROR:  could not extend file: No space left on device' >&2; echo 'HINT:  Check free disk space.' >&2"
    )
    with pytest.raises(backup.BackupError, match=r"^postgres: ERROR:  could not extend file: No space left on device$"):
        store.run(script + "; exit 1", None)


def test_side_copies_that_cannot_fit_load_nothing() -> None:
    """A store with Backup.size/free (PostgreSQL's): the parts' recorded sizes and its reserve
    against what its `free` script says (KiB), before any side copy is loaded."""
    from dataclasses import replace

    spec = replace(REDIS_BACKUP, free="read -r _; echo 3072", reserve_mb=1)  # 3 MiB free
    store = backup.Store("postgres", spec, backup.LocalExecutor({}), {})
    parts = {"a.pgdump": {"room": 1 << 20}, "b.pgdump": {"room": 1 << 19}, "old.pgdump": {}}
    backup.check_room(store, parts)  # 1.5 MiB and 1 MiB of reserve fit in 3
    parts["b.pgdump"]["room"] = 3 << 20
    with pytest.raises(backup.BackupError) as failed:
        backup.check_room(store, parts)
    assert str(failed.value) == (
        "store postgres has no room for the side copies of b.pgdump and its other 1 part(s): they need 4 MiB"
        " and a reserve of 1 MiB, 3 MiB is free: free space where postgres keeps its data and run it again"
    )
    backup.check_room(store, {"old.pgdump": {}})  # a backup from before the sizes were recorded
    unchecked = backup.Store("redis-1", REDIS_BACKUP, backup.LocalExecutor({}), {})
    backup.check_room(unchecked, parts)  # a store without a `free` script copes with a full disk


def test_a_store_saying_its_disk_is_full_in_its_own_words_gets_the_no_room_line() -> None:
    from dataclasses import replace

    spec = replace(REDIS_BACKUP, full_disk_signs=("ERROR 1114 (HY000)",))
    store = backup.Store("mysql", spec, backup.LocalExecutor({}), {})
    full = backup.BackupError("mysql: ERROR 1114 (HY000) at line 9: The table 'big' is full")
    assert backup._no_room(store, Part("big.sql", "big"), full).startswith(
        "store mysql has no room for the side copy of big.sql (mysql: ERROR 1114 (HY000) at line 9"
    )
    other = backup.BackupError("mysql: ERROR 1045 (28000): Access denied")
    assert backup._no_room(store, Part("big.sql", "big"), other) == "mysql: ERROR 1045 (28000): Access denied"

"""The command line of tools.backup around the real restic: create, list, verify, restore, prune
on a store made of plain files (a Backup whose scripts copy files), so every path of the
machinery runs in seconds. The stores' own scripts meet real servers in test_backup_real.py; the
docker and pulumi CLIs are stand-in scripts on PATH that record what they were asked."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.model import Backup, Part, Pause
from tools import backup

FILES = Backup(
    parts='read -r password; for f in "$STORE"/*.txt; do n=${f##*/}; printf \'%s\\t%s\\n\' "$n" "${n%.txt}"; done',
    dump=lambda part: f'read -r password; cat "$STORE/{part.target}.txt"',
    fingerprint=lambda part, side: (
        f'read -r password; f="$STORE/{part.target}.txt{".side" if side else ""}"; '
        'printf "lines\\t%s\\t%s\\n" "$(wc -l < "$f" | tr -d " ")" "$(cksum < "$f" | cut -d" " -f1)"'
    ),
    restore=lambda part: f'read -r password; cat > "$STORE/{part.target}.txt.side"',
    swap=lambda part: f'mv "$STORE/{part.target}.txt.side" "$STORE/{part.target}.txt"',
    discard=lambda part: f'rm -f "$STORE/{part.target}.txt.side"',
    version="echo files 1.0",
)


@pytest.fixture
def restic_bin() -> str:
    found = shutil.which("restic")
    if found is None:
        pytest.skip("restic missing: apt-get install restic")
    return found


@pytest.fixture
def store(tmp_path: Path) -> backup.Store:
    data = tmp_path / "store"
    data.mkdir()
    (data / "a.txt").write_text("one\ntwo\n")
    (data / "b.txt").write_text("three\n")
    return backup.Store("files", FILES, backup.LocalExecutor({"STORE": str(data)}), {})


def _run(tmp_path: Path, store: backup.Store, *argv: str) -> int:
    args = backup.parser().parse_args(["--repo", str(tmp_path / "repo"), *argv])
    return backup.execute(args, lambda: [store], lambda: backup.Meta("dev", 2, "abc"))


@pytest.mark.real  # the real restic, a few seconds per run (its key derivation)
def test_the_whole_cycle(
    tmp_path: Path, store: backup.Store, restic_bin: str, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _stand_in(bin_dir, "docker", f'cp "$2" {bin_dir}/copied\n')  # `docker cp FILE CONTAINER:PATH`
    assert _run(tmp_path, store, "create") == 0
    out = capsys.readouterr()
    assert "files: 2 part(s), 14 bytes" in out.out
    assert "metric written to dev-node-exporter:" in out.out, out.err
    assert 'devstack_backup_last_success_timestamp_seconds{store="files"}' in (bin_dir / "copied").read_text()
    key = tmp_path / "repo.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert _run(tmp_path, store, "create") == 0  # the repository exists: it opens
    assert _run(tmp_path, store, "list") == 0
    listed = capsys.readouterr().out.splitlines()[-2:]
    assert all("files/a.txt, files/b.txt, manifest.json" in line for line in listed)

    data = tmp_path / "store"
    (data / "a.txt").write_text("wiped\n")
    assert _run(tmp_path, store, "verify") == 0
    assert "files/a.txt: ok" in capsys.readouterr().out
    assert not (data / "a.txt.side").exists()
    assert _run(tmp_path, store, "restore") == 0
    assert (data / "a.txt").read_text() == "one\ntwo\n"

    manifest = backup.read_manifest(
        backup._restic(_args(tmp_path)), backup.backups(backup._restic(_args(tmp_path)))[listed[-1].split()[0]]
    )
    assert manifest["stack"] == "dev"
    assert manifest["phase"] == 2
    assert manifest["commit"] == "abc"
    assert manifest["tools"]["files"] == "files 1.0"
    assert manifest["tools"]["restic"].startswith("restic ")
    assert manifest["stores"]["files"]["parts"]["a.txt"]["tables"]["lines"][0] == "2"

    stamps = backup.last_success(backup._restic(_args(tmp_path)))
    assert set(stamps) == {"files"}
    assert _run(tmp_path, store, "prune", "--keep", "1") == 0
    assert "forgot 1 backup(s), kept the newest 1" in capsys.readouterr().out
    assert len(backup.backups(backup._restic(_args(tmp_path)))) == 1


def _args(tmp_path: Path) -> argparse.Namespace:
    return backup.parser().parse_args(["--repo", str(tmp_path / "repo"), "list"])


@pytest.mark.real  # the real restic, a few seconds per run (its key derivation)
def test_a_restore_that_does_not_verify_swaps_nothing(
    tmp_path: Path, store: backup.Store, restic_bin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, store, "create") == 0
    data = tmp_path / "store"
    (data / "a.txt").write_text("live\n")
    lossy = Backup(
        **{**FILES.__dict__, "restore": lambda part: f'read -r password; head -c 3 > "$STORE/{part.target}.txt.side"'}
    )
    broken = backup.Store("files", lossy, store.executor, {})
    with pytest.raises(
        backup.BackupError,
        match=r"^nothing swapped in, the live data is untouched: files/a.txt: restored tables differ",
    ):
        backup.restore([broken], backup._restic(_args(tmp_path)), None)
    assert (data / "a.txt").read_text() == "live\n"
    assert not list(data.glob("*.side"))
    assert _run(tmp_path, broken, "verify") == 1
    assert "error: files/a.txt: restored tables differ" in capsys.readouterr().err


@pytest.mark.real  # the real restic, a few seconds per run (its key derivation)
def test_unknown_backup_and_empty_repository_are_one_line(tmp_path: Path, store: backup.Store, restic_bin: str) -> None:
    restic = backup._restic(_args(tmp_path))
    restic.ensure()
    with pytest.raises(backup.BackupError, match=r"^no backup in "):
        backup.verify([store], restic, None)
    _run(tmp_path, store, "create")
    with pytest.raises(backup.BackupError, match=r"^no backup 'nope' in "):
        backup.verify([store], restic, "nope")


def _stand_in(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def test_metric_is_copied_into_node_exporters_textfile_directory(bin_dir: Path) -> None:
    record = bin_dir / "record"
    _stand_in(bin_dir, "docker", f'echo "$@" > {record}; cp "$2" {bin_dir}/copied\n')
    from devstack.services.node_exporter import TEXTFILE_DIR

    target = f"dev-node-exporter:{TEXTFILE_DIR}/devstack_backup.prom"
    assert backup.publish_metric("m 1\n", SERVICES_BY_NAME) == target
    assert record.read_text().split()[-1] == target
    assert (bin_dir / "copied").read_text() == "m 1\n"
    _stand_in(bin_dir, "docker", "echo 'No such container' >&2; exit 1\n")
    with pytest.raises(backup.BackupError, match="not written to dev-node-exporter: No such container"):
        backup.publish_metric("m 1\n", SERVICES_BY_NAME)
    without = {name: service for name, service in SERVICES_BY_NAME.items() if name != "node-exporter"}
    with pytest.raises(backup.BackupError, match="no node-exporter service in the catalog"):
        backup.publish_metric("m 1\n", without)


def test_the_users_stores_are_the_running_containers(bin_dir: Path) -> None:
    _stand_in(bin_dir, "docker", 'case "$4" in dev-postgres|dev-redis-1|dev-forgejo) echo true;; *) exit 1;; esac\n')
    passwords = {"postgres_backup_password": "b", "postgres_restore_password": "r", "redis_backup_password": "x"}
    stores = backup.user_stores(SERVICES, passwords)
    assert sorted(s.name for s in stores) == ["forgejo", "postgres", "redis-1"]
    stores.sort(key=lambda s: s.name)
    assert stores[0].passwords == {}  # Forgejo's volume: no account, root in its container
    stores.pop(0)
    assert stores[0].passwords == {"devstack_backup": "b", "devstack_restore": "r"}
    assert stores[0].executor == backup.DockerExecutor("dev-postgres")
    _stand_in(bin_dir, "docker", "exit 1\n")
    with pytest.raises(backup.BackupError, match=r"^no stack running"):
        backup.user_stores(SERVICES, passwords)


def test_docker_executor_runs_the_script_in_the_container(bin_dir: Path) -> None:
    _stand_in(bin_dir, "docker", 'echo "container=$3"; shift 3; exec "$@"\n')
    store = backup.Store("x", FILES, backup.DockerExecutor("dev-x"), {})
    assert store.run("echo ran", None) == "container=dev-x\nran\n"


def test_docker_missing_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup.shutil, "which", lambda name: None)
    with pytest.raises(backup.BackupError, match="docker CLI is not on PATH"):
        backup.running("dev-postgres")


def test_stack_outputs_come_from_pulumi(bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stand_in(bin_dir, "pulumi", """echo '{"phase": 2, "managementRoleId": "r"}'\n""")
    assert backup.stack_outputs("dev") == {"phase": 2, "managementRoleId": "r"}
    _stand_in(bin_dir, "pulumi", "echo 'error: no stack named dev found' >&2; exit 255\n")
    with pytest.raises(backup.BackupError, match=r"^no stack 'dev' to back up: error: no stack named dev found$"):
        backup.stack_outputs("dev")
    monkeypatch.setattr(backup.shutil, "which", lambda name: None)
    with pytest.raises(backup.BackupError, match="Pulumi CLI is not on PATH"):
        backup.stack_outputs("dev")


@pytest.mark.real  # the real restic, a few seconds per run (its key derivation)
def test_main_reads_the_stack_then_vault(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store: backup.Store, restic_bin: str
) -> None:
    monkeypatch.setattr(backup, "running", lambda container: True)
    monkeypatch.setattr(backup, "stack_outputs", lambda stack: {"phase": 2})
    monkeypatch.setattr(backup, "management_secret", lambda outputs: {"k": "v"})
    seen = {}

    def stores(services: object, passwords: dict[str, str]) -> list[backup.Store]:
        seen["passwords"] = passwords
        return [store]

    monkeypatch.setattr(backup, "user_stores", stores)
    assert backup.main(["--repo", str(tmp_path / "repo"), "create"]) == 0
    assert seen["passwords"] == {"k": "v"}
    manifest_ids = list(backup.backups(backup._restic(_args(tmp_path))))
    assert len(manifest_ids) == 1


def test_git_commit_names_this_checkout() -> None:
    assert len(backup.git_commit()) == 40
    assert json.dumps(backup.git_commit())


@pytest.mark.real  # the real restic
def test_vault_recovery_file_goes_to_a_repository_with_another_key(
    tmp_path: Path, store: backup.Store, restic_bin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    recovery_file = tmp_path / "vault-init.json"
    recovery_file.write_text('{"unseal_keys_b64": ["k1"], "root_token": "t"}\n')
    args = backup.parser().parse_args(
        ["--repo", str(tmp_path / "repo"), "--recovery-password-file", str(tmp_path / "elsewhere" / "r.key"), "create"]
    )
    recovery = backup.recovery_restic(args)
    meta = backup.Meta("dev", 2, "abc", recovery_file, recovery)
    assert backup.execute(args, lambda: [store], lambda: meta) == 0
    assert "Vault's recovery file: into " in capsys.readouterr().out
    data = backup._restic(args)
    assert recovery.repository == tmp_path / "repo-recovery"
    # the data repository holds no recovery file, and its key does not open the recovery one
    assert not any("vault-init" in f for b in backup.backups(data).values() for f in b["files"])
    with pytest.raises(backup.BackupError, match=r"^wrong repository password"):
        backup.Restic(recovery.repository, data.password_file, restic_bin).snapshots()
    (snapshot,) = recovery.snapshots()
    assert recovery.run("dump", snapshot["short_id"], "/vault-init.json") == recovery_file.read_text()

    same_key = backup.Restic(tmp_path / "other", data.password_file, restic_bin)
    with pytest.raises(backup.BackupError, match="must differ from the data repository's key"):
        backup.backup_recovery_file(recovery_file, same_key, data, "x")
    with pytest.raises(backup.BackupError, match="needs a repository of its own"):
        backup.backup_recovery_file(recovery_file, backup.Restic(data.repository, recovery.password_file), data, "x")
    with pytest.raises(backup.BackupError, match="recovery file cannot be read: No such file"):
        backup.backup_recovery_file(tmp_path / "gone.json", recovery, data, "x")


def test_the_stack_outputs_name_the_recovery_file(tmp_path: Path) -> None:
    args = backup.parser().parse_args(["--repo", str(tmp_path / "repo"), "create"])
    meta = backup._meta(args, {"phase": 2, "vaultRecoveryFile": "/s/dev/vault-init.json"})
    assert meta.recovery_file == Path("/s/dev/vault-init.json")
    assert meta.recovery is not None
    assert meta.recovery.password_file == Path.home() / ".config" / "devstack" / "dev" / "recovery.key"
    assert backup._meta(args, {}).recovery is None


# --- a store that pauses its writers (Backup.pause, Forgejo's) ------------------------------------

LOGGED = '; echo "{what}" >> "$LOG"'


def _logging(spec: Backup, name: str) -> Backup:
    """FILES whose dumps and swaps say in $LOG when they ran."""
    return replace(
        spec,
        dump=lambda part: spec.dump(part) + LOGGED.format(what=f"dump {name}/{part.target}"),
        swap=lambda part: spec.swap(part) + LOGGED.format(what=f"swap {name}/{part.target}"),
    )


def _logged(store: backup.Store) -> backup.Store:
    data = Path(store.executor.env["STORE"])  # type: ignore[attr-defined]
    where = backup.LocalExecutor({"STORE": str(data), "LOG": str(data.parent / "log")})
    return backup.Store(store.name, _logging(FILES, store.name), where, {})


def _pausing(store: backup.Store, stop: str = "true", resume: str = "true") -> backup.Store:
    """Another store of files (`c`) that pauses around its own dumps and those of `store`'s
    part `a` (as Forgejo around its database's dump)."""
    data = Path(store.executor.env["STORE"]).parent / "forge"  # type: ignore[attr-defined]
    data.mkdir(exist_ok=True)
    (data / "c.txt").write_text("forge\n")
    pause = Pause(
        stop=f'read -r _; {stop}; echo stop >> "$LOG"',
        resume=f'read -r _; echo resume >> "$LOG"; {resume}',
        with_parts=((store.name, "a"), ("absent", "x")),
    )
    where = backup.LocalExecutor({"STORE": str(data), "LOG": str(data.parent / "log")})
    return backup.Store("forge", replace(_logging(FILES, "forge"), pause=pause), where, {})


def _log(store: backup.Store) -> list[str]:
    log = Path(store.executor.env["LOG"])  # type: ignore[attr-defined]
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def test_the_claimed_parts_move_into_the_pausing_store(store: backup.Store) -> None:
    forge = _pausing(store)
    listed = [(store, [Part("a.txt", "a"), Part("b.txt", "b")]), (forge, [Part("c.txt", "c")])]
    claimed = backup._claimed(listed)
    assert claimed == {"forge": [(store, Part("a.txt", "a"))]}


def test_a_pause_is_resumed_whatever_happens(store: backup.Store) -> None:
    store = _logged(store)
    forge = _pausing(store)
    with backup._paused([store, forge]) as lasted:
        assert _log(store) == ["stop"]
    assert _log(store) == ["resume"]
    assert len(lasted) == 1
    assert lasted[0] >= 0
    with pytest.raises(RuntimeError, match="boom"), backup._paused([forge]):
        raise RuntimeError("boom")
    assert _log(store) == ["stop", "resume"]
    with backup._paused([store]) as lasted:
        pass
    assert lasted == []  # nothing paused

    ran_out = _pausing(store, resume="echo 'the pause ran out' >&2; exit 1")
    with pytest.raises(backup.BackupError, match=r"^store forge: the pause ran out$"), backup._paused([ran_out]):
        pass
    assert _log(store) == ["stop", "resume"]
    refused = _pausing(store, stop="echo 'no such process' >&2; exit 1")
    failed = r"^store forge could not be paused \(forge: no such process\)$"
    with pytest.raises(backup.PauseError, match=failed), backup._paused([refused]):
        raise AssertionError("the body ran without its pause")
    assert _log(store) == []


@pytest.mark.real  # the real restic, a few seconds per run (its key derivation)
def test_the_claimed_part_is_dumped_and_swapped_inside_the_pause(
    tmp_path: Path, store: backup.Store, restic_bin: str
) -> None:
    logged = _logged(store)
    forge = _pausing(logged)
    restic = backup._restic(_args(tmp_path))
    manifest = backup.create([logged, forge], restic, backup.Meta("dev", 2, "abc"))
    assert _log(logged) == ["dump files/b", "stop", "dump forge/c", "dump files/a", "resume"]
    assert set(manifest["stores"]["files"]["parts"]) == {"a.txt", "b.txt"}
    assert set(manifest["stores"]["forge"]["parts"]) == {"c.txt"}
    assert manifest["stores"]["forge"]["paused_seconds"] >= 0
    assert "paused_seconds" not in manifest["stores"]["files"]

    report = backup.restore([logged, forge], restic, None)
    assert sorted(report) == ["files/a.txt: restored", "files/b.txt: restored", "forge/c.txt: restored"]
    assert _log(logged) == ["stop", "swap files/a", "swap files/b", "swap forge/c", "resume"]

    data = Path(store.executor.env["STORE"])  # type: ignore[attr-defined]
    (data / "a.txt").write_text("live\n")
    refused = _pausing(logged, stop="echo 'Forgejo is gone' >&2; exit 1")
    with pytest.raises(
        backup.BackupError,
        match=r"^nothing swapped in, the live data is untouched: store forge could not be paused \(forge: Forgejo",
    ):
        backup.restore([logged, refused], restic, None)
    assert (data / "a.txt").read_text() == "live\n"
    assert not list(data.glob("*.side"))  # every side copy dropped
    with pytest.raises(backup.BackupError, match=r"^store forge could not be paused"):
        backup.create([logged, refused], restic, backup.Meta("dev", 2, "abc"))


@pytest.mark.real  # the real restic, a few seconds per run (its key derivation)
def test_a_side_copy_whose_check_finds_no_room_is_dropped(tmp_path: Path, store: backup.Store, restic_bin: str) -> None:
    """The side copy loaded, but checking it needs room too (PostgreSQL's sort spills to disk)."""
    restic = backup._restic(_args(tmp_path))
    backup.create([store], restic, backup.Meta("dev", 2, "abc"))
    full = "echo 'ERROR:  could not write to file \"base/pgsql_tmp/t.0\": No space left on device' >&2; exit 1"
    checking = replace(FILES, fingerprint=lambda part, side: full if side else FILES.fingerprint(part, side))
    data = tmp_path / "store"
    (data / "a.txt").write_text("live\n")
    with pytest.raises(
        backup.BackupError,
        match=r"^nothing swapped in, the live data is untouched: store files has no room for the side copy of a.txt",
    ):
        backup.restore([backup.Store("files", checking, store.executor, {})], restic, None)
    assert (data / "a.txt").read_text() == "live\n"
    assert not list(data.glob("*.side"))

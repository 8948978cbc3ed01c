"""Backups of the running stack's stores with restic: encrypted, deduplicated, checked.

python -m tools.backup create | list | verify [ID] | restore [ID] | prune   (--help on each)

Each store's own module (devstack/services/) says how it is dumped, fingerprinted (rows and a
checksum per table), restored beside the live data and swapped in (devstack.model.Backup); this
tool is the machinery around those scripts, the same for every store. The scripts run where the
server is through an Executor: `docker exec -i <container> sh -c SCRIPT` for users, a local
process in the real tests (tests/test_backup_real.py), so both run the very scripts the catalog
ships. A script takes its account's password as the first line of its stdin; restic takes the
repository key from a 0600 file (--password-file): no secret is ever an argument or in an
environment. A dump streams from the script's stdout through this process (which hashes it)
into `restic backup --stdin`: nothing touches a disk in clear.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from devstack.backups import BACKUP_USER, RESTORE_USER
from devstack.model import Backup, Part, Service
from tools.cli import run

CHUNK = 1 << 20
TAG = "devstack"
MANIFEST = "manifest.json"
INSTALL_RESTIC = "restic is not installed: apt-get install restic (Debian, Ubuntu) or brew install restic (macOS)"
KEY_BYTES = 32


class BackupError(Exception):
    """One line for the user: what went wrong and what to do."""


# --- where the scripts run -----------------------------------------------------------------------


class Executor(Protocol):
    def start(self, script: str) -> subprocess.Popen[bytes]:
        """`sh -c script` where the server is, stdin/stdout piped, stderr to a file."""
        ...


@dataclass(frozen=True)
class DockerExecutor:
    """The store's own container: what users run."""

    container: str

    def start(self, script: str) -> subprocess.Popen[bytes]:
        return _popen(["docker", "exec", "-i", self.container, "sh", "-c", script], None)


@dataclass(frozen=True)
class LocalExecutor:
    """A local process beside a test's loopback server; `env` holds only where the server
    listens (PGHOST, MYSQL_UNIX_PORT, REDIS_PORT...), never a secret."""

    env: Mapping[str, str]

    def start(self, script: str) -> subprocess.Popen[bytes]:
        return _popen(["sh", "-c", script], {**os.environ, **self.env})


_ERRORS: dict[int, IO[bytes]] = {}  # a process's stderr file, by its pid: read once it ends


def _popen(argv: list[str], env: Mapping[str, str] | None, stdin: int = subprocess.PIPE) -> subprocess.Popen[bytes]:
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _stderr
    process = subprocess.Popen(
        argv, stdin=stdin, stdout=subprocess.PIPE, stderr=errors, env=dict(env) if env is not None else None
    )
    _ERRORS[process.pid] = errors
    return process


def _stderr(process: subprocess.Popen[bytes]) -> str:
    """The last line the ended process wrote to its stderr."""
    errors = _ERRORS.pop(process.pid, None)
    if errors is None:
        return f"exit status {process.returncode}"
    with errors:
        errors.seek(0)
        lines = errors.read().decode(errors="replace").strip().splitlines()
    full = [line for line in lines if _disk_full(line)]  # the cause, not the hint after it
    return (full or lines or [f"exit status {process.returncode}"])[-1]


@dataclass(frozen=True)
class Store:
    """A running store: its catalog name, its module's scripts, where they run, the passwords."""

    name: str
    backup: Backup
    executor: Executor
    passwords: Mapping[str, str] = field(repr=False)  # user -> password

    def run(self, script: str, user: str | None, data: Iterable[bytes] = ()) -> str:
        """A script to its end: the password line, then `data`; its stdout."""
        process = self.executor.start(script)
        stdin, stdout = process.stdin, process.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            if user is not None:
                stdin.write(self.passwords.get(user, "").encode() + b"\n")
            for chunk in data:
                stdin.write(chunk)
            stdin.close()
        except BrokenPipeError:
            pass  # it ended early: its status says why
        out = stdout.read()
        if process.wait() != 0:
            raise BackupError(f"{self.name}: {_stderr(process)}")
        return out.decode()

    def parts(self) -> list[Part]:
        try:
            listing = self.run(self.backup.parts, BACKUP_USER)
        except BackupError as error:
            raise BackupError(f"store {self.name} is down or refuses the backup account ({error})") from None
        return [Part(*[*line.split("\t"), ""][:2]) for line in listing.splitlines() if line]

    def fingerprint(self, part: Part, on_side: bool) -> dict[str, list[str]]:
        out = self.run(self.backup.fingerprint(part, on_side), RESTORE_USER if on_side else BACKUP_USER)
        rows = (line.split("\t") for line in out.splitlines() if line)
        return {fields[0]: fields[1:] for fields in rows}


# --- restic ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restic:
    repository: Path
    password_file: Path
    binary: str = "restic"

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--repo", str(self.repository), "--password-file", str(self.password_file), *args]

    def start(self, *args: str, stdin: int | None = None) -> subprocess.Popen[bytes]:
        return _popen(self.argv(*args), None, stdin if stdin is not None else subprocess.DEVNULL)

    def run(self, *args: str) -> str:
        process = self.start(*args)
        out, _ = process.communicate()
        if process.returncode != 0:
            raise BackupError(self._explain(_stderr(process)))
        return out.decode()

    def _explain(self, message: str) -> str:
        if _disk_full(message):
            return (
                f"the disk holding the backup repository {self.repository} is full: free space there"
                " (or `python -m tools.backup prune`) and run it again; nothing of this backup was recorded"
            )
        if not (self.repository / "config").exists():
            return f"no backup repository at {self.repository}: run `python -m tools.backup create` first"
        if "wrong password" in message:
            return f"wrong repository password: {self.password_file} does not open {self.repository}"
        return f"restic: {message}"

    def version(self) -> str:
        return subprocess.run([self.binary, "version"], capture_output=True, text=True, check=True).stdout.strip()

    def ensure(self) -> None:
        """A new repository (and its key file, 0600) the first time; an existing one must open."""
        if (self.repository / "config").exists():
            self.run("cat", "config")
            return
        if not self.password_file.exists():
            self.password_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(KEY_BYTES) + "\n")
        self.run("init")

    def snapshots(self) -> list[dict[str, Any]]:
        return json.loads(self.run("snapshots", "--json", "--tag", TAG) or "[]")


def _disk_full(message: str) -> bool:
    return "no space left on device" in message.lower()


def require_restic() -> str:
    found = shutil.which("restic")
    if found is None:
        raise BackupError(INSTALL_RESTIC)
    return found


# --- the cycle ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    stack: str
    phase: int
    commit: str
    recovery_file: Path | None = None  # Vault's recovery file (stack output vaultRecoveryFile)
    recovery: Restic | None = None  # the repository it goes to, under a key of its own


def _tags(backup_id: str, *extra: str) -> list[str]:
    return [word for tag in (TAG, f"backup={backup_id}", *extra) for word in ("--tag", tag)]


def _stream_into_restic(store: Store, part: Part, restic: Restic, backup_id: str) -> dict[str, Any]:
    """The part's dump from its script through a SHA-256 into `restic backup --stdin`."""
    dump = store.executor.start(store.backup.dump(part))
    assert dump.stdin is not None
    assert dump.stdout is not None
    dump.stdin.write(store.passwords.get(BACKUP_USER, "").encode() + b"\n")
    dump.stdin.close()
    name = f"{store.name}/{part.name}"
    target = restic.start(
        "backup",
        "--stdin",
        "--stdin-filename",
        name,
        *_tags(backup_id, f"store={store.name}"),
        "--json",
        stdin=subprocess.PIPE,
    )
    assert target.stdin is not None
    digest, size = hashlib.sha256(), 0
    try:
        while chunk := dump.stdout.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            target.stdin.write(chunk)
        target.stdin.close()
    except BrokenPipeError:  # restic ended early (a full disk, say): its status says why
        dump.kill()
    dumped, stored = dump.wait(), target.wait()
    if stored != 0:
        _stderr(dump)  # its last words matter less than restic's
        raise BackupError(f"store {store.name}: {restic._explain(_stderr(target))}")
    if dumped != 0:
        raise BackupError(f"store {store.name} is down or its dump failed ({_stderr(dump)})")
    return {"file": name, "size": size, "sha256": digest.hexdigest()}


def create(stores: Sequence[Store], restic: Restic, meta: Meta, now: Callable[[], float] = time.time) -> dict[str, Any]:
    restic.ensure()
    started = now()
    backup_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)) + "-" + secrets.token_hex(2)
    manifest: dict[str, Any] = {
        "schema": "devstack-backup/1",
        "id": backup_id,
        "stack": meta.stack,
        "phase": meta.phase,
        "commit": meta.commit,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "tools": {"restic": restic.version()},
        "stores": {},
    }
    listed = [(store, store.parts()) for store in stores]
    claimed = _claimed(listed)
    taken = {(other.name, part.name) for parts in claimed.values() for other, part in parts}
    for store, parts in listed:
        manifest["tools"][store.name] = store.run(store.backup.version, None).strip()
        own = [(store, part) for part in parts if (store.name, part.name) not in taken]
        with _paused([store]) as paused:
            for owner, part in own + claimed.get(store.name, []):
                tables = owner.fingerprint(part, on_side=False)
                entry = {**_stream_into_restic(owner, part, restic, backup_id), "target": part.target, "tables": tables}
                if owner.backup.size is not None:
                    entry["room"] = int(owner.run(owner.backup.size(part), BACKUP_USER).strip())
                manifest["stores"].setdefault(owner.name, {"parts": {}})["parts"][part.name] = entry
        entry = manifest["stores"].setdefault(store.name, {"parts": {}})
        entry["seconds"] = round(now() - started, 3)
        if paused:
            entry["paused_seconds"] = round(paused[0], 3)
    if meta.recovery_file is not None and meta.recovery is not None:
        manifest["recovery"] = backup_recovery_file(meta.recovery_file, meta.recovery, restic, backup_id)
    _save_manifest(restic, manifest)
    return manifest


def _claimed(listed: Sequence[tuple[Store, Sequence[Part]]]) -> dict[str, list[tuple[Store, Part]]]:
    """Per store that pauses its writers, the other stores' parts it names (Backup.pause), which
    are dumped inside its pause instead of with their own store."""
    claimed: dict[str, list[tuple[Store, Part]]] = {}
    for store, _ in listed:
        if store.backup.pause is not None:
            wanted = store.backup.pause.with_parts
            claimed[store.name] = [(o, p) for o, parts in listed for p in parts if (o.name, p.target) in wanted]
    return claimed


class PauseError(BackupError):
    """A store's writers could not be paused: nothing was dumped or swapped in."""


@contextlib.contextmanager
def _paused(stores: Sequence[Store]) -> Iterator[list[float]]:
    """Each store's writers paused (Backup.pause) for the body and resumed after, whatever
    happened; once the body ended, the list it yields holds how long the pause lasted (empty:
    nothing paused). A resume that fails (the pause ran out) fails a body that succeeded: what
    it took is not consistent."""
    started, lasted, done = time.monotonic(), [], []
    try:
        for store in stores:
            if store.backup.pause is None:
                continue
            try:
                store.run(store.backup.pause.stop, BACKUP_USER)
            except BackupError as error:
                raise PauseError(f"store {store.name} could not be paused ({error})") from None
            done.append(store)
        yield lasted
    except BaseException:
        _resume(done)
        raise
    problems = _resume(done)
    if done:
        lasted.append(time.monotonic() - started)
    if problems:
        raise BackupError("; ".join(problems))


def _resume(stores: Sequence[Store]) -> list[str]:
    problems = []
    for store in stores:
        assert store.backup.pause is not None
        try:
            store.run(store.backup.pause.resume, BACKUP_USER)
        except BackupError as error:
            problems.append(f"store {error}")
    return problems


def backup_recovery_file(path: Path, recovery: Restic, data: Restic, backup_id: str) -> dict[str, Any]:
    """Vault's recovery file (its unseal keys) into its own repository, whose key differs from the
    data repository's: the data backup alone never holds what unseals the Vault data in it."""
    if recovery.repository.resolve() == data.repository.resolve():
        raise BackupError("the recovery file needs a repository of its own, not the data repository")
    recovery.ensure()
    if recovery.password_file.read_bytes() == data.password_file.read_bytes():
        raise BackupError("the recovery repository's key must differ from the data repository's key")
    try:
        content = path.read_bytes()
    except OSError as error:
        raise BackupError(f"Vault's recovery file cannot be read: {error.strerror} ({path})") from None
    process = recovery.start(
        "backup", "--stdin", "--stdin-filename", path.name, *_tags(backup_id), stdin=subprocess.PIPE
    )
    assert process.stdin is not None
    process.stdin.write(content)
    process.stdin.close()
    if process.wait() != 0:
        raise BackupError(recovery._explain(_stderr(process)))
    return {"file": path.name, "sha256": hashlib.sha256(content).hexdigest(), "repository": str(recovery.repository)}


def _save_manifest(restic: Restic, manifest: dict[str, Any]) -> None:
    process = restic.start(
        "backup", "--stdin", "--stdin-filename", MANIFEST, *_tags(manifest["id"], "manifest"), stdin=subprocess.PIPE
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(manifest, indent=2, sort_keys=True).encode())
    process.stdin.close()
    if process.wait() != 0:
        raise BackupError(restic._explain(_stderr(process)))


def backups(restic: Restic) -> dict[str, dict[str, Any]]:
    """Backup id -> its snapshots (file name -> snapshot id), oldest first."""
    found: dict[str, dict[str, Any]] = {}
    for snapshot in sorted(restic.snapshots(), key=lambda s: s["time"]):
        ids = [t.split("=", 1)[1] for t in snapshot.get("tags", []) if t.startswith("backup=")]
        if not ids:
            continue
        entry = found.setdefault(ids[0], {"time": snapshot["time"], "files": {}})
        for path in snapshot.get("paths", []):
            entry["files"][path.lstrip("/")] = snapshot["short_id"]
    return found


def _pick(restic: Restic, backup_id: str | None) -> tuple[str, dict[str, Any]]:
    found = backups(restic)
    if not found:
        raise BackupError(f"no backup in {restic.repository}: run `python -m tools.backup create` first")
    complete = [name for name, backup in found.items() if MANIFEST in backup["files"]]
    if backup_id is None and not complete:
        raise BackupError(f"no complete backup in {restic.repository} (none got its manifest): run create again")
    chosen = backup_id or complete[-1]  # the newest that finished: a partial one is never the default
    if chosen not in found:
        raise BackupError(f"no backup {chosen!r} in {restic.repository}; `python -m tools.backup list` shows them")
    return chosen, found[chosen]


def _dump(restic: Restic, snapshot: str, name: str) -> subprocess.Popen[bytes]:
    return restic.start("dump", snapshot, "/" + name)


def read_manifest(restic: Restic, backup: dict[str, Any]) -> dict[str, Any]:
    process = _dump(restic, backup["files"].get(MANIFEST, ""), MANIFEST)
    out, _ = process.communicate()
    if process.returncode != 0:
        raise BackupError(f"the backup's manifest cannot be read ({restic._explain(_stderr(process))})")
    return json.loads(out)


@dataclass
class Checked:
    store: str
    part: Part
    sha256: str
    problem: str | None = None


def _restore_to_side(store: Store, part: Part, entry: dict[str, Any], restic: Restic, snapshot: str) -> Checked:
    """The part from the repository into its side copy, hashed on the way; then its fingerprint
    against the one `create` recorded."""
    source = _dump(restic, snapshot, entry["file"])
    assert source.stdout is not None
    digest = hashlib.sha256()

    def chunks() -> Iterable[bytes]:
        while chunk := source.stdout.read(CHUNK):  # type: ignore[union-attr]
            digest.update(chunk)
            yield chunk

    checked = Checked(store.name, part, "")
    try:
        store.run(store.backup.restore(part), RESTORE_USER, chunks())
    except BackupError as error:
        checked.problem = _no_room(store, part, error)
    for _ in chunks():  # what the script left unread still counts towards the checksum
        pass
    if source.wait() != 0:
        checked.problem = f"{entry['file']} is damaged in the repository ({_stderr(source)})"
        return checked
    checked.sha256 = digest.hexdigest()
    if checked.sha256 != entry["sha256"]:
        checked.problem = f"{entry['file']}: checksum {checked.sha256[:12]} differs from the manifest's"
    elif checked.problem is None:
        try:
            side = store.fingerprint(part, on_side=True)
        except BackupError as error:  # its queries need room too (a sort spills to disk)
            checked.problem = _no_room(store, part, error)
            return checked
        if side != entry["tables"]:
            checked.problem = f"{entry['file']}: restored tables differ: {_difference(entry['tables'], side)}"
    return checked


def _no_room(store: Store, part: Part, error: BackupError) -> str:
    """The error, or, when it says the store's disk is full, what to do about it."""
    problem = str(error)
    if not (_disk_full(problem) or any(sign in problem for sign in store.backup.full_disk_signs)):
        return problem
    return (
        f"store {store.name} has no room for the side copy of {part.name} ({error}): free space"
        f" where {store.name} keeps its data (the side copy needs about the dump's size) and run it again"
    )


MIB = 1 << 20


def check_room(store: Store, parts: Mapping[str, Mapping[str, Any]]) -> None:
    """The side copies of a store that must never fill its disk (Backup.size/free) fit, with its
    reserve, in what is free where it keeps its data; checked before any is loaded."""
    rooms = {name: int(entry["room"]) for name, entry in parts.items() if "room" in entry}
    if store.backup.free is None or not rooms:
        return
    free = int(store.run(store.backup.free, RESTORE_USER).strip()) * 1024
    needed, reserve = sum(rooms.values()), store.backup.reserve_mb * MIB
    if free < needed + reserve:
        largest = max(rooms, key=lambda name: rooms[name])
        raise BackupError(
            f"store {store.name} has no room for the side copies of {largest} and its other"
            f" {len(rooms) - 1} part(s): they need {_mib(needed)} MiB and a reserve of {store.backup.reserve_mb} MiB,"
            f" {_mib(free)} MiB is free: free space where {store.name} keeps its data and run it again"
        )


def _mib(size: int) -> str:
    return f"{size / MIB:.0f}"


def _difference(expected: Mapping[str, Any], got: Mapping[str, Any]) -> str:
    names = sorted(set(expected) | set(got))
    return ", ".join(f"{n} {expected.get(n)} -> {got.get(n)}" for n in names if expected.get(n) != got.get(n))


def check_repository(restic: Restic) -> str | None:
    process = restic.start("check", "--read-data")
    out, _ = process.communicate()
    if process.returncode == 0:
        return None
    text = out.decode(errors="replace") + _stderr(process)
    return " ".join(line.strip() for line in text.splitlines() if "pack" in line or "error" in line.lower())[:400]


def _parts(manifest: Mapping[str, Any], store: Store) -> Mapping[str, Any]:
    """What the manifest recorded of a store's parts (none for a store it did not back up)."""
    return manifest["stores"].get(store.name, {}).get("parts", {})


def verify(stores: Sequence[Store], restic: Restic, backup_id: str | None) -> list[Checked]:
    """Every part restored beside the live data and compared, then discarded."""
    _, backup = _pick(restic, backup_id)
    manifest = read_manifest(restic, backup)
    for store in stores:
        check_room(store, _parts(manifest, store))
    results = []
    for store in stores:
        for name, entry in _parts(manifest, store).items():
            part = Part(name, entry["target"])
            checked = _restore_to_side(store, part, entry, restic, backup["files"].get(entry["file"], ""))
            store.run(store.backup.discard(part), RESTORE_USER)
            results.append(checked)
    return results


def restore(stores: Sequence[Store], restic: Restic, backup_id: str | None) -> list[str]:
    """Every part to its side copy and checked; only if all pass, each is swapped in."""
    damage = check_repository(restic)
    if damage is not None:
        raise BackupError(f"the repository is damaged, nothing restored: {damage}")
    _, backup = _pick(restic, backup_id)
    manifest = read_manifest(restic, backup)
    try:
        for store in stores:
            check_room(store, _parts(manifest, store))
    except BackupError as error:
        raise BackupError(f"nothing swapped in, the live data is untouched: {error}") from None
    checked: list[tuple[Store, Checked]] = []
    for store in stores:
        for name, entry in _parts(manifest, store).items():
            part = Part(name, entry["target"])
            result = _restore_to_side(store, part, entry, restic, backup["files"].get(entry["file"], ""))
            checked.append((store, result))
            if result.problem is not None:
                for other, done in checked:
                    other.run(other.backup.discard(done.part), RESTORE_USER)
                raise BackupError(f"nothing swapped in, the live data is untouched: {result.problem}")
    report = []
    try:
        with _paused(list({store.name: store for store, _ in checked}.values())):
            for store, result in checked:
                store.run(store.backup.swap(result.part), RESTORE_USER)
                report.append(f"{store.name}/{result.part.name}: restored")
    except PauseError as error:
        for store, done in checked:
            store.run(store.backup.discard(done.part), RESTORE_USER)
        raise BackupError(f"nothing swapped in, the live data is untouched: {error}") from None
    return report


def prune(restic: Restic, keep: int) -> list[str]:
    """Forget all but the newest `keep` backups (each a set of snapshots) and prune their data."""
    found = backups(restic)
    dropped = list(found)[: max(len(found) - keep, 0)]
    snapshots = [s for backup_id in dropped for s in found[backup_id]["files"].values()]
    if snapshots:
        restic.run("forget", "--prune", *snapshots)
    return dropped


# --- the backup-age metric ------------------------------------------------------------------------

METRIC = "devstack_backup_last_success_timestamp_seconds"
METRIC_FILE = "devstack_backup.prom"
TEXTFILE_SERVICE = "node-exporter"  # the observability tier's textfile collector (its module)


def render_metric(last_success: Mapping[str, float]) -> str:
    """The Prometheus text file node-exporter's textfile collector reads: per store, the unix
    time of its last good backup."""
    lines = [
        f"# HELP {METRIC} Unix time of the store's last backup that completed and was recorded.",
        f"# TYPE {METRIC} gauge",
    ]
    lines += [f'{METRIC}{{store="{store}"}} {int(stamp)}' for store, stamp in sorted(last_success.items())]
    return "\n".join(lines) + "\n"


def textfile_target(services: Mapping[str, Service]) -> tuple[str, str]:
    """node-exporter's container and textfile directory, from its catalog entry and module."""
    service = services.get(TEXTFILE_SERVICE)
    if service is None:
        raise BackupError(f"no {TEXTFILE_SERVICE} service in the catalog: the backup-age metric is not written")
    import importlib

    module = importlib.import_module(f"devstack.services.{TEXTFILE_SERVICE.replace('-', '_')}")
    return service.container_name, module.TEXTFILE_DIR


def publish_metric(text: str, services: Mapping[str, Service]) -> str:
    """The file into node-exporter's textfile directory with `docker cp` (written beside, then
    renamed by the copy, so the collector never reads half a file)."""
    container, directory = textfile_target(services)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / METRIC_FILE
        path.write_text(text)
        path.chmod(0o644)
        result = subprocess.run(
            ["docker", "cp", str(path), f"{container}:{directory}/{METRIC_FILE}"],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise BackupError(f"the backup-age metric was not written to {container}: {result.stderr.strip()}")
    return f"{container}:{directory}/{METRIC_FILE}"


def last_success(restic: Restic) -> dict[str, float]:
    """Per store, the time of the newest backup whose manifest was recorded (the last step)."""
    snapshots = restic.snapshots()
    complete = {t for s in snapshots if "manifest" in s.get("tags", []) for t in s["tags"] if t.startswith("backup=")}
    stamps: dict[str, float] = {}
    for snapshot in snapshots:
        tags = snapshot.get("tags", [])
        if not complete.intersection(tags):
            continue
        for store in (t.split("=", 1)[1] for t in tags if t.startswith("store=")):
            stamps[store] = max(stamps.get(store, 0.0), _unix(snapshot["time"]))
    return stamps


def _unix(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(_trim(stamp)).timestamp()


def _trim(stamp: str) -> str:
    """restic's RFC 3339 time with nanoseconds, as Python 3.11 parses it (microseconds)."""
    head, _, rest = stamp.partition(".")
    if not rest:
        return stamp
    digits = "".join(itertools.takewhile(str.isdigit, rest))
    zone = rest[len(digits) :]
    return f"{head}.{digits[:6]}{'+00:00' if zone == 'Z' else zone}"


# --- the running stack ----------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "devstack"


def running(container: str) -> bool:
    if shutil.which("docker") is None:
        raise BackupError("no stack running: the docker CLI is not on PATH")
    result = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.Running}}", container], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and result.stdout.strip() == "true"


def stack_outputs(stack: str) -> dict[str, Any]:
    """`pulumi stack output` of the user's stack (secrets shown: they stay in this process)."""
    if shutil.which("pulumi") is None:
        raise BackupError(
            "the Pulumi CLI is not on PATH: the stack's outputs (the management identity) are read with it"
        )
    result = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise BackupError(f"no stack {stack!r} to back up: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(result.stdout or "{}")


def management_secret(outputs: Mapping[str, Any], opener: Callable[..., Any] | None = None) -> dict[str, str]:
    """Log in to Vault as the management identity (its AppRole from the stack outputs, never the
    root token) and read secret/management, the only path its policy opens."""
    import ssl
    import urllib.error
    import urllib.request

    if "managementRoleId" not in outputs:
        raise BackupError("the stack has no management identity: backups need phase 2 (or features=backups=true)")
    address = str(outputs["vaultAddress"]).rstrip("/")
    context = ssl.create_default_context(cafile=outputs["vaultCaFile"]) if outputs.get("vaultCaFile") else None
    open_url = opener or (lambda request: urllib.request.urlopen(request, timeout=10, context=context))

    def call(path: str, body: dict[str, str] | None = None, token: str | None = None) -> dict[str, Any]:
        request = urllib.request.Request(f"{address}/v1/{path}", data=json.dumps(body).encode() if body else None)
        if token:
            request.add_header("X-Vault-Token", token)
        try:
            with open_url(request) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise BackupError(f"Vault refused {path} ({error.code}): is it sealed, or the secret_id expired?") from None
        except (urllib.error.URLError, OSError) as error:
            raise BackupError(f"Vault at {address} does not answer ({error}): is the stack running?") from None

    login = call(
        "auth/approle/login", {"role_id": outputs["managementRoleId"], "secret_id": outputs["managementSecretId"]}
    )
    token = login["auth"]["client_token"]
    return dict(call("secret/data/management", token=token)["data"]["data"])


def user_stores(services: Sequence[Service], passwords: Mapping[str, str]) -> list[Store]:
    """The catalog's stores whose containers run, each with the management's passwords."""
    stores = []
    for service in services:
        if service.backup is None or not running(service.container_name):
            continue
        system = service.serves.system if service.serves is not None else None  # None: no account
        mine = {
            user: passwords[f"{system}_{role}_password"]
            for role, user in (("backup", BACKUP_USER), ("restore", RESTORE_USER))
            if f"{system}_{role}_password" in passwords
        }
        stores.append(Store(service.name, service.backup, DockerExecutor(service.container_name), mine))
    if not stores:
        raise BackupError("no stack running: no store's container is up (`pulumi up` first)")
    return stores


def git_commit() -> str:
    result = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


# --- the command line -----------------------------------------------------------------------------

HELP = {
    "create": "dump every running store into the restic repository (and write the backup-age metric)",
    "list": "the backups in the repository, newest last",
    "verify": "check the repository (every byte) and restore each part of a backup beside the live data",
    "restore": "restore a backup: each part beside the live data, checked, and only then swapped in",
    "prune": "forget all but the newest backups and free their space",
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m tools.backup",
        description="Encrypted, incremental, verified backups of the running stack (restic). See docs/backups.md.",
    )
    top.add_argument("--stack", default="dev", help="the Pulumi stack whose containers are backed up (default: dev)")
    top.add_argument(
        "--repo", type=Path, help="the restic repository (default: ~/.local/share/devstack/backups/<stack>)"
    )
    top.add_argument("--password-file", type=Path, help="the repository key, a 0600 file (default: <repo>.key)")
    top.add_argument(
        "--recovery-repo",
        type=Path,
        help="where Vault's recovery file goes, under a key of its own (default: <repo>-recovery)",
    )
    top.add_argument(
        "--recovery-password-file",
        type=Path,
        help="its key, kept apart from the data key (default: ~/.config/devstack/<stack>/recovery.key)",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="{" + ",".join(HELP) + "}")
    for name, text in HELP.items():
        sub = commands.add_parser(name, help=text, description=text)
        if name in ("verify", "restore"):
            sub.add_argument("backup", nargs="?", help="the backup's id (default: the newest)")
        if name == "prune":
            sub.add_argument("--keep", type=int, default=7, help="how many backups to keep (default: 7)")
    return top


def _restic(args: argparse.Namespace) -> Restic:
    repo = args.repo or STATE / "backups" / args.stack
    return Restic(repo, args.password_file or repo.with_name(repo.name + ".key"), require_restic())


def recovery_restic(args: argparse.Namespace) -> Restic:
    data = _restic(args)
    repo = args.recovery_repo or data.repository.with_name(data.repository.name + "-recovery")
    key = args.recovery_password_file or Path.home() / ".config" / "devstack" / args.stack / "recovery.key"
    return Restic(repo, key, data.binary)


def execute(args: argparse.Namespace, stores: Callable[[], Sequence[Store]], meta: Callable[[], Meta]) -> int:
    restic = _restic(args)
    if args.command == "list":
        for backup_id, backup in backups(restic).items():
            print(f"{backup_id}  {backup['time'][:19]}  {', '.join(sorted(backup['files']))}")
        return 0
    if args.command == "prune":
        dropped = prune(restic, args.keep)
        print(f"forgot {len(dropped)} backup(s), kept the newest {args.keep}")
        return 0
    if args.command == "create":
        manifest = create(stores(), restic, meta())
        for store, entry in manifest["stores"].items():
            parts = entry["parts"].values()
            print(f"{store}: {len(parts)} part(s), {sum(p['size'] for p in parts)} bytes")
        if "recovery" in manifest:
            print(f"Vault's recovery file: into {manifest['recovery']['repository']} (its own key)")
        print(f"backup {manifest['id']} recorded")
        try:
            print(f"metric written to {publish_metric(render_metric(last_success(restic)), _catalog())}")
        except BackupError as error:
            print(f"note: {error}", file=sys.stderr)
        return 0
    if args.command == "verify":
        damage = check_repository(restic)
        results = verify(stores(), restic, args.backup)
        problems = [r.problem for r in results if r.problem] + ([f"repository: {damage}"] if damage else [])
        for result in results:
            print(f"{result.store}/{result.part.name}: {'ok' if result.problem is None else 'FAILED'}")
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1 if problems else 0
    for line in restore(stores(), restic, args.backup):
        print(line)
    return 0


def _catalog() -> dict[str, Service]:
    from devstack.catalog import SERVICES_BY_NAME

    return dict(SERVICES_BY_NAME)


def _meta(args: argparse.Namespace, outputs: Mapping[str, Any]) -> Meta:
    recovery = outputs.get("vaultRecoveryFile")
    return Meta(
        args.stack,
        int(outputs.get("phase", -1)),
        git_commit(),
        Path(recovery) if recovery else None,
        recovery_restic(args) if recovery else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    outputs: dict[str, Any] = {}

    def stores() -> list[Store]:
        from devstack.catalog import SERVICES

        if not any(running(s.container_name) for s in SERVICES if s.backup is not None):
            raise BackupError("no stack running: no store's container is up (`pulumi up` first)")
        outputs.update(stack_outputs(args.stack))
        return user_stores(SERVICES, management_secret(outputs))

    try:
        return execute(args, stores, lambda: _meta(args, outputs))
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    run(main)

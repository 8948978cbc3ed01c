"""Forgejo's data volume through tools.backup on the real Docker engine, with the real restic.

The stand-in for Forgejo's container is Debian's static busybox (the image's own shell tools
are Alpine's busybox too) with a Docker volume at /data holding real git repositories made by
Debian's git, and a process named `gitea` (Forgejo 1.21's binary name) that runs as git (uid
1000) and keeps writing a counter into the volume, as a running forge writes its queues and
logs. The container has the capabilities the strict end state gives Forgejo's (all dropped but
the plan's grants: no CAP_KILL), so root in `docker exec` must signal git's processes as git. Docker runs the scripts
the catalog ships (devstack/services/forgejo.py) with `docker exec -i`, as for users. So a
backup whose pause does not hold the writer still is caught: the counter in the dump differs
from the fingerprint taken just before, and verify reports it.

PostgreSQL is Debian's server on loopback with the plan's phase-2 accounts (tests/shipped.py):
the forgejo database's dump must be taken inside Forgejo's pause, which the test watches by
reading the stand-in writer's process state each time a PostgreSQL script starts.

Docker objects are named fjb-<pid>-...; the container has no network (--network=none).
Run with -s to see the measured backup and restore times.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devstack.services.forgejo import BACKUP as FORGEJO_BACKUP
from devstack.services.forgejo import DATA, FORGEJO
from devstack.services.postgres import BACKUP as POSTGRES_BACKUP
from tests.dockerlab import BUSYBOX, _rootfs_tar, docker, docker_unavailable_reason
from tests.realservers import LOCALHOST, Postgres, ServerUnavailableError
from tests.shipped import scratch, shipped, start_postgres
from tests.test_backup_real import META, PLAN, _passwords, _timed, flip_a_byte, pgdata
from tools.backup import BackupError, DockerExecutor, LocalExecutor, Restic, Store, create, restore, verify

pytestmark = pytest.mark.real

PREFIX = f"fjb-{os.getpid()}"
IMAGE = "fjb-forgejo-standin"
GIT_UID = "1000:1000"  # the image's git user, who owns the repositories
PART = f"{DATA.volume}.tar"
FILE = f"forgejo/{PART}"

# Forgejo's stand-in: a process named gitea (a script's name is its process name) that rewrites
# a counter in the volume every 5 ms while it runs.
WRITER = b"""#!/bin/sh
echo "$$" > /run/gitea.pid
i=0
mkdir -p /data/gitea/queues
while :; do
  i=$((i + 1))
  echo "$i" > /data/gitea/queues/counter
  usleep 5000
done
"""
# A git process of a user the container does not know: nobody in it may signal it.
STRANGER = b"#!/bin/sh\nwhile :; do sleep 1; done\n"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\ngit:x:1000:1000:git:/data/git:/bin/sh\n"
GROUP = b"root:x:0:\ngit:x:1000:\n"


def _restic() -> str:
    found = shutil.which("restic")
    if found is None:
        pytest.skip("restic missing: apt-get install restic")
    return found


def _git() -> str:
    found = shutil.which("git")
    if found is None:
        pytest.skip("git missing: apt-get install git")
    return found


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    reason = docker_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if not BUSYBOX.is_file():
        pytest.skip("busybox-static missing: apt-get install busybox-static")
    buffer = io.BytesIO(_rootfs_tar(BUSYBOX))
    with tarfile.open(fileobj=buffer, mode="a") as tar:
        for directory, mode in (("usr", 0o755), ("usr/local", 0o755), ("usr/local/bin", 0o755), ("run", 0o1777)):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for path, content, mode in (
            ("usr/local/bin/gitea", WRITER, 0o755),
            ("usr/local/bin/git", STRANGER, 0o755),
            ("etc/passwd", PASSWD, 0o644),
            ("etc/group", GROUP, 0o644),
        ):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(content), mode
            tar.addfile(info, io.BytesIO(content))
    tag = f"{IMAGE}:{hashlib.sha256(buffer.getvalue()).hexdigest()[:12]}"
    docker("import", "-", tag, stdin=buffer.getvalue())
    yield tag
    docker("rmi", "-f", tag, check=False)


@dataclass
class Forge:
    container: str
    seed: Path  # the repositories as git made them, on the host
    heads: dict[str, str] = field(default_factory=dict)

    def exec(self, script: str) -> str:
        return docker("exec", self.container, "sh", "-c", script)

    def writer_state(self) -> str:
        """R, S or D while it runs; T once stopped."""
        return self.exec('cut -d" " -f3 "/proc/$(cat /run/gitea.pid)/stat"').strip()

    def counter(self) -> int:
        return int(self.exec("cat /data/gitea/queues/counter").strip() or "0")

    def repositories(self, into: Path) -> Path:
        """The volume's repositories copied out with `docker cp` (not with the scripts under test)."""
        into.mkdir()
        docker("cp", f"{self.container}:/data/git/repositories", str(into))
        return into / "repositories"


def _git_run(*args: str, cwd: Path) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "dev",
        "GIT_AUTHOR_EMAIL": "dev@localhost",
        "GIT_COMMITTER_NAME": "dev",
        "GIT_COMMITTER_EMAIL": "dev@localhost",
    }
    done = subprocess.run([_git(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _seed_repositories(root: Path) -> dict[str, str]:
    """Two bare repositories as Forgejo keeps them (<owner>/<name>.git), pushed to from a work
    tree: commits, a tag, a 1.5 MB file of random bytes (so that restic's biggest pack holds
    repository data); one repository packed (git gc), one with loose objects."""
    heads = {}
    for name, packed in (("dev/app.git", True), ("dev/notes.git", False)):
        bare = root / "repositories" / name
        bare.mkdir(parents=True)
        _git_run("init", "-q", "--bare", "-b", "main", str(bare), cwd=root)
        work = root / ("work-" + name.replace("/", "-"))
        work.mkdir()
        _git_run("init", "-q", "-b", "main", cwd=work)
        (work / "README.md").write_text(f"# {name}\n")
        (work / "blob.bin").write_bytes(os.urandom(1_500_000 if packed else 20_000))
        _git_run("add", ".", cwd=work)
        _git_run("commit", "-q", "-m", "first", cwd=work)
        (work / "README.md").write_text(f'# {name}\n\nit\'s "quoted" and ünïcode\n')
        _git_run("commit", "-q", "-am", "second", cwd=work)
        _git_run("tag", "v1", cwd=work)
        _git_run("push", "-q", str(bare), "main", "v1", cwd=work)
        if packed:
            _git_run("gc", "-q", cwd=bare)
        heads[name] = _git_run("rev-parse", "main", cwd=bare)
        shutil.rmtree(work)
    return heads


@pytest.fixture
def forge(image: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Forge]:
    """The stand-in with its volume; a test that parametrizes it indirectly gets a volume made
    with those `docker volume create --opt`s (a small tmpfs)."""
    volume, container = f"{PREFIX}-data", f"{PREFIX}-forgejo"
    docker("rm", "-f", container, check=False)
    docker("volume", "rm", "-f", volume, check=False)
    options = [f"--opt={option}" for option in getattr(request, "param", ())]
    try:
        docker("volume", "create", *options, volume)
        run = (
            f"mkdir -p /data/git /data/gitea/attachments /data/ssh && chown -R {GIT_UID} /data/git /data/gitea"
            " && su -s /bin/sh -c /usr/local/bin/gitea git & exec sleep 3600"
        )
        assert FORGEJO.hardening is not None
        caps = ["--cap-drop=ALL", *(f"--cap-add={grant.capability}" for grant in FORGEJO.hardening.capabilities)]
        mount = f"{volume}:{DATA.path}"
        docker("run", "-d", "--name", container, "--network=none", *caps, "-v", mount, image, "sh", "-c", run)
        seed = tmp_path / "seed"
        heads = _seed_repositories(seed)
        docker("cp", str(seed / "repositories"), f"{container}:/data/git/")
        forge = Forge(container, seed / "repositories", heads)
        forge.exec(
            "printf 'attachment \\001\\002' > /data/gitea/attachments/a1 && ln -s ../gitea /data/git/link"
            f" && chown -R {GIT_UID} /data/git /data/gitea && chmod 600 /data/gitea/attachments/a1"
        )
        deadline = time.monotonic() + 10
        while forge.counter() < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield forge
    finally:
        docker("rm", "-f", container, check=False)
        docker("volume", "rm", "-f", volume, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> Restic:
    return Restic(tmp_path / "repo", tmp_path / "repo.key", _restic())


def _store(forge: Forge) -> Store:
    return Store("forgejo", FORGEJO_BACKUP, DockerExecutor(forge.container), {})


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _still_runs(forge: Forge) -> None:
    """The writer is not stopped: its counter moves on."""
    assert forge.writer_state() != "T"
    first = forge.counter()
    deadline = time.monotonic() + 10
    while forge.counter() == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert forge.counter() != first, "Forgejo's stand-in was left paused"


def test_forgejo_volume_round_trip(forge: Forge, repo: Restic, tmp_path: Path) -> None:
    store = _store(forge)
    manifest = _timed("forgejo backup", lambda: create([store], repo, META))
    entry = manifest["stores"]["forgejo"]["parts"][PART]
    tables = entry["tables"]
    assert entry["target"] == DATA.path
    assert manifest["stores"]["forgejo"]["paused_seconds"] > 0
    print(f"forgejo paused: {manifest['stores']['forgejo']['paused_seconds']} s, volume {entry['size']} bytes")
    assert manifest["tools"]["forgejo"].startswith("tar (busybox)")
    packs = [name for name in tables if name.startswith("git/repositories/dev/app.git/objects/pack/")]
    assert packs
    assert all(len(tables[name][1]) == 64 for name in packs if name.endswith(".pack"))
    assert tables["git/repositories/dev/app.git/HEAD"][0] == f"regular file {GIT_UID} 644"
    attachment = hashlib.sha256(b"attachment \1\2").hexdigest()
    assert tables["gitea/attachments/a1"] == [f"regular file {GIT_UID} 600", attachment]
    assert tables["git/link"] == ["symbolic link -> ../gitea", ""]
    _still_runs(forge)

    checked = _timed("forgejo verify", lambda: verify([store], repo, None))
    assert [r.problem for r in checked] == [None]
    assert forge.exec("ls -A /data").split() == ["git", "gitea", "ssh"]  # the side copy is gone

    # the wipe: a repository gone, another's ref moved, an attachment changed
    forge.exec(
        "rm -rf /data/git/repositories/dev/app.git && echo 0000 > /data/git/repositories/dev/notes.git/refs/heads/main"
        " && echo changed > /data/gitea/attachments/a1"
    )
    report = _timed("forgejo restore", lambda: restore([store], repo, None))
    assert report == [f"forgejo/{PART}: restored"]
    _still_runs(forge)
    assert forge.exec("ls -A /data").split() == ["git", "gitea", "ssh"]  # no side or old copy left
    back = forge.repositories(tmp_path / "back")
    assert _files(back) == _files(forge.seed)  # every byte of every repository
    for name, head in forge.heads.items():
        _git_run("fsck", "--full", "--strict", cwd=back / name)
        assert _git_run("rev-parse", "main", cwd=back / name) == head
        assert _git_run("rev-parse", "v1^{commit}", cwd=back / name) == head
    assert forge.exec("stat -c '%u:%g %a' /data/gitea/attachments/a1").strip() == f"{GIT_UID} 600"
    assert forge.exec("cat /data/gitea/attachments/a1") == "attachment \1\2"
    assert forge.exec("readlink /data/git/link").strip() == "../gitea"


def test_a_flipped_byte_names_the_forgejo_part_and_restore_refuses(forge: Forge, repo: Restic) -> None:
    store = _store(forge)
    create([store], repo, META)
    flip_a_byte(repo)

    problems = [r.problem for r in verify([store], repo, None) if r.problem]
    assert any(p.startswith(f"{FILE} is damaged in the repository") for p in problems), problems
    forge.exec("rm -rf /data/git/repositories/dev/notes.git")
    with pytest.raises(BackupError, match="damaged, nothing restored"):
        restore([store], repo, None)
    assert forge.exec("ls /data/git/repositories/dev").split() == ["app.git"]  # untouched
    assert forge.exec("ls -A /data").split() == ["git", "gitea", "ssh"]
    _still_runs(forge)


@dataclass
class Watched:
    """PostgreSQL's scripts, run locally as in test_backup_real.py; each start notes whether
    Forgejo's stand-in was stopped at that moment."""

    inner: LocalExecutor
    forge: Forge
    seen: list[tuple[str, str]] = field(default_factory=list)

    def start(self, script: str) -> subprocess.Popen[bytes]:
        kind = "dump" if "pg_dump -Fc" in script else "swap" if "RENAME TO" in script else "other"
        database = "forgejo" if "-d forgejo " in script or "forgejo_devstack" in script else ""
        self.seen.append((f"{kind} {database}".strip(), self.forge.writer_state()))
        return self.inner.start(script)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    try:
        with scratch(shipped("postgres", *PLAN)) as s, start_postgres(s) as server:
            yield server
    except ServerUnavailableError as missing:
        pytest.skip(f"PostgreSQL missing ({missing}): apt-get install postgresql")


def test_forgejo_database_is_dumped_and_swapped_inside_forgejos_pause(
    forge: Forge, postgres: Postgres, repo: Restic
) -> None:
    postgres.apply(
        "\\c forgejo\nSET ROLE forgejo;\nCREATE TABLE repository (id int PRIMARY KEY, name text);\n"
        "INSERT INTO repository VALUES (1, 'dev/app'), (2, 'dev/notes');\n"
    )
    where = LocalExecutor(
        {"PGHOST": LOCALHOST, "PGPORT": str(postgres.port), "PGCONNECT_TIMEOUT": "5", "PGDATA": str(pgdata(postgres))}
    )
    watched = Watched(where, forge)
    stores = [Store("postgres", POSTGRES_BACKUP, watched, _passwords("postgres")), _store(forge)]
    manifest = create(stores, repo, META)
    assert "forgejo.pgdump" in manifest["stores"]["postgres"]["parts"]
    assert PART in manifest["stores"]["forgejo"]["parts"]
    print(f"\nforgejo paused, with its database's dump: {manifest['stores']['forgejo']['paused_seconds']} s")
    dumps = [state for kind, state in watched.seen if kind == "dump forgejo"]
    assert dumps == ["T"], watched.seen  # Forgejo stood still while its database was dumped
    others = [state for kind, state in watched.seen if kind == "dump"]
    assert others, watched.seen
    assert "T" not in others, watched.seen  # and only then: the others' dumps do not wait
    _still_runs(forge)

    postgres.apply("\\c forgejo\nDELETE FROM repository;\n")
    forge.exec("rm -rf /data/git/repositories/dev/app.git")
    watched.seen.clear()
    report = restore(stores, repo, None)
    assert "postgres/forgejo.pgdump: restored" in report
    assert f"forgejo/{PART}: restored" in report
    swaps = [state for kind, state in watched.seen if kind.startswith("swap")]
    assert swaps == ["T"] * len(manifest["stores"]["postgres"]["parts"]), watched.seen
    assert postgres.apply("\\c forgejo\nSELECT count(*) FROM repository;\n", "-qAt").stdout.strip() == "2"
    assert forge.exec("ls /data/git/repositories/dev").split() == ["app.git", "notes.git"]
    _still_runs(forge)


def test_a_pause_that_ran_out_records_nothing(forge: Forge, repo: Restic) -> None:
    """The watchdog fired (here: its mark set by hand, as after PAUSE_LIMIT_SECONDS): the writer
    went on mid-dump, so the backup fails in one line and no manifest is written."""
    from dataclasses import replace

    from tools.backup import MANIFEST, backups

    stop = FORGEJO_BACKUP.pause
    assert stop is not None
    marked = replace(stop, stop=stop.stop + ': >"$state/ran-out"\n')
    store = Store("forgejo", replace(FORGEJO_BACKUP, pause=marked), DockerExecutor(forge.container), {})
    with pytest.raises(BackupError, match=r"^store forgejo: Forgejo's pause ran out \(300 s\)"):
        create([store], repo, META)
    assert all(MANIFEST not in b["files"] for b in backups(repo).values())
    _still_runs(forge)
    assert forge.exec("ls /tmp").split() == []  # no pause state left behind


def test_a_writer_the_pause_cannot_stop_fails_the_backup(forge: Forge, repo: Restic) -> None:
    """A git of a uid the container does not know (so neither root without CAP_KILL nor su can
    signal it): the pause says so in one line, nothing is recorded, Forgejo goes on."""
    from tools.backup import MANIFEST, backups

    docker("exec", "-d", "-u", "2000:2000", forge.container, "/usr/local/bin/git")
    deadline = time.monotonic() + 10
    while "git" not in forge.exec("cat /proc/[0-9]*/comm 2>/dev/null || true").split():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(
        BackupError, match=r"^store forgejo could not be paused \(forgejo: Forgejo's process \d+ \(git\)"
    ):
        create([_store(forge)], repo, META)
    assert all(MANIFEST not in b["files"] for b in backups(repo).values())
    _still_runs(forge)


@pytest.mark.parametrize("forge", [("type=tmpfs", "device=tmpfs", "o=size=6m")], indirect=True, ids=["tmpfs-6m"])
def test_a_full_volume_during_restore_swaps_nothing_in(forge: Forge, repo: Restic) -> None:
    """Forgejo's volume on a 6 MiB tmpfs (a real Docker volume): after the backup, a file fills it
    but 1 MiB, less than the side copy's 1.6 MB. restore says so in one line, drops the side
    folder and leaves the live volume as it was; with the file gone, it restores."""
    store = _store(forge)
    create([store], repo, META)
    forge.exec("rm -rf /data/git/repositories/dev/notes.git")
    free_kib = int(forge.exec("df -k /data | awk 'NR == 2 { print $4 }'"))
    forge.exec(f"dd if=/dev/zero of=/data/filler bs=1024 count={free_kib - 1024} 2>/dev/null")
    live = forge.exec("cd /data && find . ! -path ./gitea/queues/counter | sort")
    with pytest.raises(BackupError) as failed:
        restore([store], repo, None)
    line = str(failed.value)
    print(f"\n{line}")
    assert "\n" not in line
    assert line.startswith(
        f"nothing swapped in, the live data is untouched: store forgejo has no room for the side copy of {PART}"
    )
    assert "free space where forgejo keeps its data" in line
    assert forge.exec("cd /data && find . ! -path ./gitea/queues/counter | sort") == live  # no side folder
    _still_runs(forge)

    forge.exec("rm /data/filler")
    assert restore([store], repo, None) == [f"forgejo/{PART}: restored"]
    assert forge.exec("ls /data/git/repositories/dev").split() == ["app.git", "notes.git"]

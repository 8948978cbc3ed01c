"""Forgejo, the Git forge: the catalog entry, its TLS settings (as a web server, and as a
PostgreSQL client from dual mode on), the step that creates its admin account, and the backup
of its data volume (repositories, attachments, avatars, app.ini, SSH host keys), taken while
Forgejo is paused together with its database's dump."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from devstack.accounts import sh_quote
from devstack.backups import NO_PASSWORD, OLD_SUFFIX, SIDE_SUFFIX
from devstack.model import (
    MIN_UP,
    Backup,
    Credentials,
    Flow,
    Grant,
    Hardening,
    Healthcheck,
    Limits,
    Metrics,
    Part,
    Pause,
    Port,
    PostStart,
    SecretField,
    ServerTls,
    Service,
    Tier,
    TlsSupport,
    VolumeMount,
    account_user,
    secret_files,
)
from devstack.phases import TlsMode
from devstack.services.vault import VAULT_FLOW
from devstack.tls import GO_CIPHER_SUITES, TLS_DIR, curl_probe, https_url, tls_files, with_probe

ADMIN_SCRIPT = Path(__file__).resolve().parent.parent.parent / "scripts" / "forgejo-admin.sh"


def forgejo_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """Forgejo 1.21.11 (the v1.21/forgejo branch at its v1.21.11-0 merge 82d1eeb47e, Gitea 1.21):
    modules/setting/server.go [server] PROTOCOL, CERT_FILE, KEY_FILE, SSL_MIN_VERSION,
    SSL_CIPHER_SUITES (names as in cmd/web_https.go), ROOT_URL (default
    PROTOCOL://DOMAIN:HTTP_PORT/); modules/setting/database.go [database] SSL_MODE, passed to
    lib/pq v1.10.9 as sslmode (disable, require, verify-ca, verify-full); pq reads the CA from
    PGSSLROOTCERT (conn.go parseEnviron). Host `postgres` is in PostgreSQL's leaf names.

    The image's setup writes GITEA__section__KEY variables into app.ini on the data volume
    (environment-to-ini, modules/setting/config_env.go), and a key written once stays: every
    mode, off included, states the keys it depends on, so a rollback really returns to plain
    HTTP and a plaintext database."""
    cert, key, ca = tls_files(tls_dir)
    port = service.port("http").container
    required = mode is TlsMode.REQUIRED
    env: dict[str, str] = {
        "GITEA__server__PROTOCOL": "https" if required else "http",
        "GITEA__server__ROOT_URL": f"{'https' if required else 'http'}://localhost:{port}/",
        "GITEA__database__SSL_MODE": "disable" if mode is TlsMode.OFF else "verify-full",
    }
    if mode is not TlsMode.OFF:
        env["PGSSLROOTCERT"] = ca  # read by every pq connection, the `forgejo admin` CLI's too
    if not required:
        return ServerTls(env=env)
    env |= {
        "GITEA__server__CERT_FILE": cert,
        "GITEA__server__KEY_FILE": key,
        "GITEA__server__SSL_MIN_VERSION": "tlsv1.2",
        "GITEA__server__SSL_CIPHER_SUITES": ",".join(s.removeprefix("TLS_").lower() for s in GO_CIPHER_SUITES),
    }
    probe = curl_probe(ca, https_url(service, "http", "/api/healthz"))
    return ServerTls(env=env, healthcheck=with_probe(service, probe))


# --- Backups: the data volume as a tar stream, taken while Forgejo is paused ---------------------

DATA = VolumeMount("forgejo-data", "/data")
SIDE_DIR, OLD_DIR = SIDE_SUFFIX, OLD_SUFFIX  # inside the volume: a swap is a rename, never a copy
# The processes that write the volume or the database: Forgejo itself (the 1.21 image runs it as
# `gitea web`), sshd and every git it spawns (pushes). s6-svscan and its supervisors stay up.
WRITERS = ("gitea", "forgejo", "sshd", "git", "git-*")
PAUSE_LIMIT_SECONDS = 300  # the pause ends by itself after this, should tools.backup die mid-way
PAUSE_STATE = "/tmp/devstack-backup-pause"  # in the container: the paused pids and the watchdog's

# The top-level entries of the current directory but the side and old copies, as "$@".
_ENTRIES = f"""set --
for entry in * .[!.]* ..?*; do
  [ -e "$entry" ] || [ -L "$entry" ] || continue
  case $entry in {SIDE_DIR}|{OLD_DIR}) continue ;; esac
  set -- "$@" "$entry"
done
"""


def _cd(part: Part, on_side: bool = False) -> str:
    where = f"{part.target}/{SIDE_DIR}" if on_side else part.target
    return f"cd {sh_quote(where)}\n"


def _fj_dump(part: Part) -> str:
    empty = f'[ "$#" -gt 0 ] || {{ echo "nothing to back up in {part.target}" >&2; exit 1; }}\n'
    return NO_PASSWORD + _cd(part) + _ENTRIES + empty + 'tar -c -f - --numeric-owner "$@" </dev/null\n'


def _fj_fingerprint(part: Part, on_side: bool) -> str:
    """Per file and folder (side and old copies left out): kind, owner, mode and, for a file,
    its SHA-256: `path<TAB>kind uid:gid mode<TAB>sha256`, sorted. A symbolic link by its target
    only: Linux ignores a link's own owner and mode, and busybox tar does not restore them."""
    prune = f"\\( -path ./{SIDE_DIR} -o -path ./{OLD_DIR} \\) -prune -o"
    join = (
        "NR == FNR { sums[substr($0, 67)] = substr($0, 1, 64); next }"
        ' { path = $1; sub(/^\\.\\//, "", path); print path "\\t" $2 "\\t" sums[$1] }'
    )
    return (
        NO_PASSWORD
        + _cd(part, on_side)
        + f"""find . -mindepth 1 {prune} ! -type l -exec stat -c '%n\t%F %u:%g %a' {{}} + >"$secrets/meta"
find . -mindepth 1 {prune} -type l -print | while IFS= read -r link; do
  printf '%s\\tsymbolic link -> %s\\n' "$link" "$(readlink "$link")"
done >>"$secrets/meta"
find . -mindepth 1 {prune} -type f -exec sha256sum {{}} + >"$secrets/sums"
awk -F "$(printf '\\t')" {sh_quote(join)} "$secrets/sums" "$secrets/meta" | LC_ALL=C sort
"""
    )


def _fj_restore(part: Part) -> str:
    return (
        NO_PASSWORD
        + _cd(part)
        + f"""rm -rf {SIDE_DIR}
mkdir {SIDE_DIR}
tar -x -f - --numeric-owner -C {SIDE_DIR}
"""
    )


def _fj_swap(part: Part) -> str:
    """Every live entry moves into the old copy and the side copy's entries take their places:
    renames inside one volume, done in a moment (and while Forgejo is paused)."""
    missing = f'{{ echo "no side copy in {part.target} to swap in" >&2; exit 1; }}'
    return (
        NO_PASSWORD
        + _cd(part)
        + f"""[ -d {SIDE_DIR} ] || {missing}
rm -rf {OLD_DIR}
mkdir {OLD_DIR}
{_ENTRIES}for entry in "$@"; do mv -- "$entry" {OLD_DIR}/; done
cd {SIDE_DIR}
{_ENTRIES}for entry in "$@"; do mv -- "$entry" ../; done
cd ..
rmdir {SIDE_DIR}
rm -rf {OLD_DIR}
"""
    )


def _fj_discard(part: Part) -> str:
    return NO_PASSWORD + _cd(part) + f"rm -rf {SIDE_DIR}\n"


# Pause: SIGSTOP to every writer (again until no new one appears: a git forked mid-scan), so that
# the volume and the database stand still at one instant, as after a power cut, which git and
# Forgejo are built to survive; requests wait (TCP queues them) and go on after SIGCONT. Not
# `docker pause`: a paused container takes no `docker exec`, which the dumps need. A watchdog in
# the container sends SIGCONT after PAUSE_LIMIT_SECONDS whatever happens to tools.backup; resume
# then fails, and the backup is not recorded. Every writer must be seen stopped, or the pause
# fails (the backup with it): never a dump that only looks consistent.
_WRITER_PATTERN = "|".join(WRITERS)

# `signal SIG PID...`: as root, or, where root may not (the strict end state drops CAP_KILL, and
# Forgejo runs as git), as the process's owner through su (SETUID and SETGID are granted).
_SIGNAL = """signal() {  # its own variable names: a function shares the script's
  signal_name=$1
  shift
  for signal_pid in "$@"; do
    kill "-$signal_name" "$signal_pid" 2>/dev/null && continue
    signal_uid=$(awk '/^Uid:/ { print $2 }' "/proc/$signal_pid/status" 2>/dev/null) || continue
    signal_user=$(awk -F: -v uid="$signal_uid" '$3 == uid { print $1; exit }' /etc/passwd)
    [ -z "$signal_user" ] || su -s /bin/sh -c "kill -$signal_name $signal_pid" "$signal_user" 2>/dev/null || true
  done
}
state_of() {
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1
}
"""

_PAUSE_STOP = (
    NO_PASSWORD
    + _SIGNAL
    + f"""state={PAUSE_STATE}
if [ -r "$state/watchdog" ]; then kill "$(cat "$state/watchdog")" 2>/dev/null || true; fi
rm -rf "$state"
mkdir -p "$state"
paused=" "
for round in 1 2 3 4 5; do
  fresh=""
  for proc in /proc/[0-9]*; do
    pid=${{proc#/proc/}}
    [ "$pid" != "$$" ] || continue
    name=$(cat "$proc/comm" 2>/dev/null) || continue
    case $name in {_WRITER_PATTERN}) ;; *) continue ;; esac
    case $paused in *" $pid "*) continue ;; esac
    fresh="$fresh $pid"
  done
  [ -n "$fresh" ] || break
  # shellcheck disable=SC2086
  signal STOP $fresh
  paused="$paused${{fresh# }} "
  if [ "$round" -eq 5 ]; then
    # shellcheck disable=SC2086
    signal CONT $paused
    echo "Forgejo keeps starting processes: not paused" >&2
    exit 1
  fi
done
for pid in $paused; do
  tries=0
  while now=$(state_of "$pid") && [ -n "$now" ] && [ "$now" != T ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 20 ]; then
      echo "Forgejo's process $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) could not be paused: not backed up" >&2
      # shellcheck disable=SC2086
      signal CONT $paused
      exit 1
    fi
    sleep 0.05
  done
done
printf '%s\\n' "$paused" >"$state/pids"
(
  sleep {PAUSE_LIMIT_SECONDS}
  : >"$state/ran-out"
  # shellcheck disable=SC2086
  signal CONT $paused
) </dev/null >/dev/null 2>&1 &
echo "$!" >"$state/watchdog"
"""
)

_PAUSE_RESUME = (
    NO_PASSWORD
    + _SIGNAL
    + f"""state={PAUSE_STATE}
[ -r "$state/pids" ] || exit 0
kill "$(cat "$state/watchdog")" 2>/dev/null || true
read -r paused <"$state/pids" || paused=""
# shellcheck disable=SC2086
[ -z "$paused" ] || signal CONT $paused
if [ -e "$state/ran-out" ]; then
  rm -rf "$state"
  echo "Forgejo's pause ran out ({PAUSE_LIMIT_SECONDS} s) before the dumps ended: they are not consistent" >&2
  exit 1
fi
rm -rf "$state"
"""
)

BACKUP = Backup(
    parts=NO_PASSWORD + f"printf '%s\\t%s\\n' {sh_quote(DATA.volume + '.tar')} {sh_quote(DATA.path)}\n",
    dump=_fj_dump,
    fingerprint=_fj_fingerprint,
    restore=_fj_restore,
    swap=_fj_swap,
    discard=_fj_discard,
    version='v=$(tar --version 2>/dev/null | head -n 1); [ -n "$v" ] || v=$(busybox 2>&1 | head -n 1); echo "$v"',
    # Its database is dumped (by PostgreSQL's scripts) inside the same pause.
    pause=Pause(_PAUSE_STOP, _PAUSE_RESUME, with_parts=(("postgres", account_user("forgejo")),)),
)

FORGEJO = Service(
    name="forgejo",
    image="codeberg.org/forgejo/forgejo",
    tag="1.21.11-0",
    tier=Tier.APP,
    host_id=20,
    ports=(Port("http", 3000, 3000), Port("ssh", 22, 2222)),
    volumes=(DATA,),
    healthcheck=Healthcheck(("CMD", "curl", "-fsS", "http://127.0.0.1:3000/api/healthz")),
    limits=Limits(2, 192, weight=2),
    profiles=MIN_UP,
    # The rootful image: s6 supervises Forgejo and sshd as root; its setup scripts chown /data and
    # step down to git (uid 1000) with su-exec. (The -rootless image would need its own layout.)
    hardening=Hardening(
        user=None,
        root_reason="the rootful image's s6 supervisor, setup scripts and sshd start as root, then step down to git",
        capabilities=(
            Grant("CHOWN", "its setup scripts chown /data and the SSH host keys to git"),
            Grant("DAC_OVERRIDE", "its setup scripts, as root, write folders git owns"),
            Grant("FOWNER", "its setup scripts chmod files git owns"),
            Grant("SETUID", "su-exec and sshd step down to git"),
            Grant("SETGID", "su-exec and sshd step down to git's group"),
            Grant("SYS_CHROOT", "sshd's privilege separation chroots each connection (Git over SSH)"),
        ),
        pids=512,
        pids_reason="s6, sshd and a git process per request beside Forgejo",
    ),
    depends_on=("vault", "postgres"),
    flows=(VAULT_FLOW, Flow("postgres", "postgres")),
    # INSTALL_LOCK skips the web installer: the database and admin are set up as code.
    env=MappingProxyType(
        {
            "USER_UID": "1000",
            "USER_GID": "1000",
            "GITEA__database__DB_TYPE": "postgres",
            "GITEA__database__HOST": "postgres:5432",
            "GITEA__database__NAME": account_user("forgejo"),
            "GITEA__database__USER": account_user("forgejo"),
            "GITEA__security__INSTALL_LOCK": "true",
            "GITEA__metrics__ENABLED": "true",
        }
    ),
    credentials=Credentials(
        entrypoint=("/usr/bin/entrypoint", "/bin/s6-svscan", "/etc/s6"),
        fields=(
            SecretField("admin_user", "devadmin"),
            SecretField("admin_password"),
            SecretField("admin_email", "devadmin@localhost"),
            SecretField("secret_key"),
            SecretField("internal_token"),
        ),
        env=secret_files(
            GITEA__database__PASSWD__FILE="postgres_password",
            GITEA__security__SECRET_KEY__FILE="secret_key",
            GITEA__security__INTERNAL_TOKEN__FILE="internal_token",
        ),
        owner="git:git",
    ),
    tls=TlsSupport(owner=1000, settings=forgejo_tls),
    metrics=Metrics("http"),  # [metrics] ENABLED above, no token: inside the networks only
    # First-run setup as code: the database is configured by env, the admin made here.
    post_start=PostStart("forgejo-admin", ADMIN_SCRIPT),
    backup=BACKUP,
)

"""MongoDB: the catalog entry, its TLS options per mode, and its clients' accounts with the mongosh
script that creates them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from devstack.accounts import Account, AccountKind, check_reserved, check_unique, login_account
from devstack.model import (
    STD_UP,
    AccountServer,
    ClientRole,
    Credentials,
    Hardening,
    Healthcheck,
    Limits,
    Login,
    Port,
    SecretField,
    ServerTls,
    Service,
    SetupScript,
    Tier,
    TlsSupport,
    Tuning,
    VolumeMount,
    secret_files,
)
from devstack.phases import TlsMode
from devstack.services.vault import VAULT_FLOW
from devstack.tls import CA_FILE, CIPHERS, TLS_DIR, with_probe

COMBINED_PEM = "mongodb.pem"  # mongod wants the certificate, its chain and the key in one file


def mongodb_args(mode: TlsMode, tls_dir: str = TLS_DIR) -> tuple[str, ...]:
    if mode is TlsMode.OFF:
        return ()
    return (
        "--tlsMode",
        "requireTLS" if mode is TlsMode.REQUIRED else "preferTLS",
        "--tlsCertificateKeyFile",
        f"{tls_dir}/{COMBINED_PEM}",
        "--tlsCAFile",
        f"{tls_dir}/{CA_FILE}",
        "--tlsAllowConnectionsWithoutCertificates",  # clients prove themselves with SCRAM
        "--tlsDisabledProtocols",
        "TLS1_0,TLS1_1",
        "--setParameter",
        f"opensslCipherConfig={CIPHERS}",  # TLS 1.2 suites; TLS 1.3's are all AEAD
    )


def mongodb_healthcheck(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> Healthcheck | None:
    if mode is not TlsMode.REQUIRED:
        return None
    probe = ("CMD", "mongosh", "--quiet", "--tls", "--tlsCAFile", f"{tls_dir}/{CA_FILE}", "--host", "localhost")
    return with_probe(service, (*probe, "--eval", "db.adminCommand('ping').ok"))


def _tls(service: Service, mode: TlsMode) -> ServerTls:
    if mode is TlsMode.OFF:
        return ServerTls()
    return ServerTls(args=mongodb_args(mode), healthcheck=mongodb_healthcheck(service, mode))


_RESERVED_DATABASES = frozenset({"admin", "local", "config"})

# One line on purpose: mongosh reads stdin like its REPL, and a single statement is evaluated as
# a whole; any failure ends the shell with status 1. No `//` comments (they would end the line).
_MONGO_TEMPLATE = """
try {
  const spec = __SPEC__;
  db.getSiblingDB("admin").auth(spec.admin.user, spec.admin.pwd);
  for (const a of spec.accounts) {
    const target = db.getSiblingDB(a.db);
    const update = { pwd: a.pwd, roles: a.roles, mechanisms: ["SCRAM-SHA-256"] };
    if (target.getUser(a.user) === null) {
      target.createUser(Object.assign({ user: a.user }, update));
      print("devstack: created MongoDB user " + a.user + " in " + a.db);
    } else {
      target.updateUser(a.user, update);
      print("devstack: updated MongoDB user " + a.user + " in " + a.db);
    }
  }
} catch (e) {
  print("devstack: MongoDB accounts failed: " + (e && e.message ? e.message : e));
  quit(1);
}
"""


def mongo_user_database(account: Account) -> str:
    """Where the account's user is defined (its authSource): an app's own database, else admin."""
    return account.database if account.database is not None else "admin"


def mongo_roles(account: Account) -> list[dict[str, str]]:
    if account.kind is AccountKind.MONITOR:
        return [{"role": "clusterMonitor", "db": "admin"}, {"role": "read", "db": "local"}]
    if account.kind is AccountKind.BACKUP:  # MongoDB's own role for mongodump
        return [{"role": "backup", "db": "admin"}]
    if account.kind is AccountKind.RESTORE:  # ... and for mongorestore
        return [{"role": "restore", "db": "admin"}]
    if account.database is None:
        raise ValueError(f"MongoDB: app account {account.name!r} needs a database")
    return [{"role": "readWrite", "db": account.database}]


def mongo_setup_js(admin_user: str, admin_password: str, accounts: Sequence[Account]) -> str:
    """A mongosh script that logs in as the admin (credentials inside the script, i.e. on stdin)
    and creates or updates every user (SCRAM-SHA-256): APP gets readWrite on its own database and
    is defined there; MONITOR gets clusterMonitor and read on `local`, BACKUP MongoDB's `backup`
    role and RESTORE its `restore` role (the management's, for mongodump and mongorestore), all
    three defined in admin.
    """
    if not admin_user or not admin_password:
        raise ValueError("MongoDB: the admin user and password must not be empty")
    for account in accounts:
        if account.name == admin_user and mongo_user_database(account) == "admin":
            raise ValueError(f"MongoDB: account {account.name!r} would replace the admin user")
    check_unique(accounts)
    check_reserved(accounts, frozenset(), _RESERVED_DATABASES, "MongoDB")
    spec = {
        "admin": {"user": admin_user, "pwd": admin_password},
        "accounts": [
            {"user": a.name, "pwd": a.password, "db": mongo_user_database(a), "roles": mongo_roles(a)} for a in accounts
        ],
    }
    # JSON is a JavaScript literal; ensure_ascii keeps the script ASCII (U+2028/9 escaped too).
    encoded = json.dumps(spec, ensure_ascii=True, separators=(",", ":"))
    body = " ".join(line.strip() for line in _MONGO_TEMPLATE.strip().splitlines())
    return body.replace("__SPEC__", encoded) + "\n"


def _setup_script(logins: Sequence[Login], admin: Mapping[str, str]) -> str:
    return mongo_setup_js(admin["user"], admin["password"], [login_account(login) for login in logins])


# mongosh authenticates as the admin itself: the credentials are inside the script.
SETUP = SetupScript(
    cli=("mongosh", "--quiet"),
    script=_setup_script,
    admin_keys=("user", "password"),
)


# --- Tuning: settings from the container's own memory limit -------------------------------------

MONGOD_OVERHEAD_MB = 256  # connections, the query engine and the server itself


def wired_tiger_cache_gb(limit_mb: int) -> str:
    """WiredTiger's cache: half of what mongod's own overhead leaves (MongoDB's own rule, applied
    to the container's limit instead of the host's memory), 0.25 GB at least (its minimum)."""
    gb = max((limit_mb - MONGOD_OVERHEAD_MB) / 2 / 1024, 0.25)
    return f"{int(gb * 100) / 100:.2f}"


def _tuning(service: Service, limit_mb: int) -> Tuning:
    cache = wired_tiger_cache_gb(limit_mb)
    return Tuning(args=("--wiredTigerCacheSizeGB", cache), caches={"wiredTigerCacheSizeGB": cache})


MONGODB = Service(
    name="mongodb",
    image="mongo",
    tag="7.0.16",
    tier=Tier.DATA,
    host_id=15,
    ports=(Port("mongodb", 27017, 27017),),
    volumes=(VolumeMount("mongodb-data", "/data/db"),),
    healthcheck=Healthcheck(
        ("CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"),
        interval="15s",
        timeout="5s",
        retries=5,
    ),
    limits=Limits(2, 512, weight=3),
    profiles=STD_UP,
    # mongo: mongodb is 999:999 in its Dockerfile and owns /data/db; its entrypoint runs as that user.
    hardening=Hardening(user="999:999", pids=512, pids_reason="a thread per connection"),
    depends_on=("vault",),
    flows=(VAULT_FLOW,),
    credentials=Credentials(
        entrypoint=("docker-entrypoint.sh", "mongod"),
        fields=(SecretField("user", "dev_admin"), SecretField("password")),
        env=secret_files(MONGO_INITDB_ROOT_USERNAME_FILE="user", MONGO_INITDB_ROOT_PASSWORD_FILE="password"),
        owner="mongodb:mongodb",
    ),
    tls=TlsSupport(owner=999, settings=_tls, combined_pem=COMBINED_PEM),
    serves=AccountServer("mongodb", port="mongodb", setup=SETUP, backup_roles=(ClientRole.BACKUP, ClientRole.RESTORE)),
    tuning=_tuning,
)

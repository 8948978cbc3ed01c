"""Forgejo, the Git forge: the catalog entry, its TLS settings (as a web server, and as a
PostgreSQL client from dual mode on) and the step that creates its admin account."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from devstack.model import (
    MIN_UP,
    Credentials,
    Flow,
    Grant,
    Hardening,
    Healthcheck,
    Limits,
    Metrics,
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


FORGEJO = Service(
    name="forgejo",
    image="codeberg.org/forgejo/forgejo",
    tag="1.21.11-0",
    tier=Tier.APP,
    host_id=20,
    ports=(Port("http", 3000, 3000), Port("ssh", 22, 2222)),
    volumes=(VolumeMount("forgejo-data", "/data"),),
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
)

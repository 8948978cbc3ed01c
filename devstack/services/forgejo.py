"""Forgejo: the Git forge, a PostgreSQL client."""

from __future__ import annotations

from types import MappingProxyType

from devstack.model import (
    MIN_UP,
    VAULT_FLOW,
    Credentials,
    Flow,
    Healthcheck,
    Limits,
    Port,
    SecretField,
    Service,
    Tier,
    VolumeMount,
    account_user,
    secret_files,
)

FORGEJO = Service(
    name="forgejo",
    image="codeberg.org/forgejo/forgejo",
    tag="1.21.11-0",
    tier=Tier.APP,
    host_id=20,
    ports=(Port("http", 3000, 3000), Port("ssh", 22, 2222)),
    volumes=(VolumeMount("forgejo-data", "/data"),),
    healthcheck=Healthcheck(("CMD", "curl", "-fsS", "http://127.0.0.1:3000/api/healthz")),
    limits=Limits(2, 2048),
    profiles=MIN_UP,
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
)

"""PostgreSQL: the catalog entry."""

from __future__ import annotations

from devstack.model import (
    MIN_UP,
    VAULT_FLOW,
    Credentials,
    Healthcheck,
    Limits,
    Port,
    SecretField,
    Service,
    Tier,
    VolumeMount,
    secret_files,
)

POSTGRES = Service(
    name="postgres",
    image="postgres",
    tag="18.1-bookworm",
    tier=Tier.DATA,
    host_id=10,
    ports=(Port("postgres", 5432, 5432),),
    volumes=(VolumeMount("postgres-data", "/var/lib/postgresql"),),
    healthcheck=Healthcheck(
        ("CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"),
        interval="15s",
        timeout="5s",
        retries=5,
    ),
    limits=Limits(2, 2048),
    profiles=MIN_UP,
    depends_on=("vault",),
    flows=(VAULT_FLOW,),
    credentials=Credentials(
        entrypoint=("docker-entrypoint.sh", "postgres"),
        fields=(SecretField("user", "dev_admin"), SecretField("password"), SecretField("database", "dev_database")),
        env=secret_files(POSTGRES_USER_FILE="user", POSTGRES_PASSWORD_FILE="password", POSTGRES_DB_FILE="database"),
        owner="postgres:postgres",
    ),
)

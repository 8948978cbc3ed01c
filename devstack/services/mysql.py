"""MySQL."""

from __future__ import annotations

from devstack.model import (
    STD_UP,
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

MYSQL = Service(
    name="mysql",
    image="mysql",
    tag="8.0.40",
    tier=Tier.DATA,
    host_id=12,
    ports=(Port("mysql", 3306, 3306),),
    volumes=(VolumeMount("mysql-data", "/var/lib/mysql"),),
    # ping succeeds on "access denied" too: it proves the server answers without a password
    healthcheck=Healthcheck(
        ("CMD", "mysqladmin", "ping", "-h", "127.0.0.1", "--silent"),
        interval="15s",
        timeout="5s",
        retries=5,
    ),
    limits=Limits(2, 2048),
    profiles=STD_UP,
    depends_on=("vault",),
    flows=(VAULT_FLOW,),
    credentials=Credentials(
        entrypoint=("docker-entrypoint.sh", "mysqld"),
        fields=(SecretField("root_password"),),
        env=secret_files(MYSQL_ROOT_PASSWORD_FILE="root_password"),
        owner="mysql:mysql",
    ),
)

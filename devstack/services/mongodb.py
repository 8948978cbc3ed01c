"""MongoDB."""

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
    limits=Limits(2, 2048),
    profiles=STD_UP,
    depends_on=("vault",),
    flows=(VAULT_FLOW,),
    credentials=Credentials(
        entrypoint=("docker-entrypoint.sh", "mongod"),
        fields=(SecretField("user", "dev_admin"), SecretField("password")),
        env=secret_files(MONGO_INITDB_ROOT_USERNAME_FILE="user", MONGO_INITDB_ROOT_PASSWORD_FILE="password"),
        owner="mongodb:mongodb",
    ),
)

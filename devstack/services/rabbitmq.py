"""RabbitMQ."""

from __future__ import annotations

from types import MappingProxyType

from devstack.model import (
    MIGRATION_PORT,
    PLAIN_BESIDE_TLS,
    SECRETS_DIR,
    STD_UP,
    TLS_PORT,
    VAULT_FLOW,
    Credentials,
    Healthcheck,
    Limits,
    Port,
    SecretField,
    Service,
    Template,
    Tier,
    VolumeMount,
)

RABBITMQ = Service(
    name="rabbitmq",
    image="rabbitmq",
    tag="3.13.7-management-alpine",
    tier=Tier.DATA,
    host_id=14,
    ports=(
        Port("amqp", 5672, 5672, PLAIN_BESIDE_TLS),
        Port("amqps", 5671, 5671, TLS_PORT),
        Port("management", 15672, 15672),  # HTTPS itself once TLS is required
        Port("management-tls", 15671, 15671, MIGRATION_PORT),
        Port("metrics", 15692),  # HTTPS itself once TLS is required
        Port("metrics-tls", 15691, None, MIGRATION_PORT),
    ),
    volumes=(VolumeMount("rabbitmq-data", "/var/lib/rabbitmq"),),
    healthcheck=Healthcheck(("CMD", "rabbitmq-diagnostics", "-q", "ping")),
    limits=Limits(1, 1024),
    profiles=STD_UP,
    depends_on=("vault",),
    flows=(VAULT_FLOW,),
    # The image dropped *_FILE support: a main config file on the tmpfs carries the admin.
    env=MappingProxyType({"RABBITMQ_CONFIG_FILE": f"{SECRETS_DIR}/rabbitmq.conf"}),
    credentials=Credentials(
        entrypoint=("docker-entrypoint.sh", "rabbitmq-server"),
        fields=(SecretField("user", "dev_admin"), SecretField("password"), SecretField("vhost", "dev_vhost")),
        templates=(
            Template(
                "rabbitmq.conf",
                f"{SECRETS_DIR}/rabbitmq.conf",
                "default_user = {{user}}\ndefault_pass = {{password}}\ndefault_vhost = {{vhost}}\n",
            ),
        ),
        owner="rabbitmq:rabbitmq",
    ),
)

"""Each client's own account on a data service, created as code once the server is healthy.

The script travels on the command's stdin (a Pulumi secret) into `docker exec -i`, so no
password is ever an argument; it is idempotent and re-runs whenever an account changes.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.secrets import ServiceSecret
from devstack.accounts import (
    Account,
    AccountKind,
    RedisRole,
    RedisUser,
    mongo_setup_js,
    mysql_setup_sql,
    postgres_setup_sql,
    rabbitmq_setup_sh,
    redis_acl_lines,
    sha256_hex,
)
from devstack.credentials import ClientAccount
from devstack.model import ClientRole, Service

RABBITMQ_VHOST = "dev_vhost"


@dataclass(frozen=True)
class AccountSetupArgs:
    server: Service
    system: str  # postgres | mysql | mongodb | rabbitmq
    accounts: tuple[ClientAccount, ...]
    admin: ServiceSecret  # the server's own secret (its admin credentials)
    clients: Mapping[str, ServiceSecret]  # where each client's password lives
    container: docker.Container


def _account(client: ClientAccount, password: str) -> Account:
    if client.role is ClientRole.MONITOR:
        return Account(client.user, password, kind=AccountKind.MONITOR)
    # An app owns a database named after it; PgBouncer's lookup account owns none.
    database = None if client.role is ClientRole.AUTH or client.system == "rabbitmq" else client.user
    return Account(client.user, password, database=database)


def _fixed(server: Service, key: str) -> str:
    fields = server.credentials.fields if server.credentials else ()
    value = next((f.fixed for f in fields if f.key == key), None)
    if value is None:
        raise ValueError(f"{server.name} has no fixed {key}")
    return value


def _passwords(args: AccountSetupArgs) -> pulumi.Output[list[str]]:
    return pulumi.Output.all(*(args.clients[a.client].value(a.password_key) for a in args.accounts))


def _script(args: AccountSetupArgs) -> tuple[str, pulumi.Output[str], dict[str, pulumi.Output[str]]]:
    """(command line, stdin script, secret environment) for the server's own CLI."""
    container = shlex.quote(args.server.container_name)
    accounts = args.accounts
    pooler = next((a.user for a in accounts if a.role is ClientRole.AUTH), None)

    def build(passwords: Sequence[str]) -> list[Account]:
        return [_account(a, p) for a, p in zip(accounts, passwords, strict=True)]

    if args.system == "postgres":
        user = shlex.quote(_fixed(args.server, "user"))
        script = _passwords(args).apply(lambda p: postgres_setup_sql(build(p), pgbouncer_auth_user=pooler))
        # Inside the container the admin connects over the local socket, which trusts it.
        return f"docker exec -i {container} psql -q -v ON_ERROR_STOP=1 -d postgres -U {user}", script, {}
    if args.system == "mysql":
        script = _passwords(args).apply(lambda p: mysql_setup_sql(build(p)))
        # `-e MYSQL_PWD` with no value copies it from this command's (secret) environment.
        return (
            f"docker exec -i -e MYSQL_PWD {container} mysql -uroot",
            script,
            {"MYSQL_PWD": args.admin.value("root_password")},
        )
    if args.system == "mongodb":
        script = pulumi.Output.all(args.admin.value("user"), args.admin.value("password"), _passwords(args)).apply(
            lambda v: mongo_setup_js(v[0], v[1], build(v[2]))
        )
        return f"docker exec -i {container} mongosh --quiet", script, {}
    if args.system == "rabbitmq":
        script = _passwords(args).apply(lambda p: rabbitmq_setup_sh(build(p), vhost=RABBITMQ_VHOST))
        return f"docker exec -i {container} sh -s", script, {}
    raise ValueError(f"no account setup for {args.system}")


class AccountSetup(pulumi.ComponentResource):
    def __init__(self, name: str, args: AccountSetupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:accounts:AccountSetup", name, None, opts)
        line, script, environment = _script(args)
        self.setup = command.local.Command(
            name,
            create=line,
            stdin=pulumi.Output.secret(script),
            environment={k: pulumi.Output.secret(v) for k, v in environment.items()} or None,
            logging=command.local.Logging.STDOUT_AND_STDERR,
            # A new container may be a new, empty server: set the accounts up again.
            triggers=[args.container.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.container]),
        )
        self.register_outputs({"server": args.server.name, "accounts": [a.user for a in args.accounts]})


def redis_users_file(
    admin_password: pulumi.Output[str], accounts: tuple[ClientAccount, ...], clients: Mapping[str, ServiceSecret]
) -> pulumi.Output[str]:
    """A Redis node's ACL file: the admin and each client, by password verifier only."""

    def render(values: list[str]) -> str:
        admin, *passwords = values
        users = [
            RedisUser.with_password(a.user, p, RedisRole.EXPORTER if a.role is ClientRole.MONITOR else RedisRole.APP)
            for a, p in zip(accounts, passwords, strict=True)
        ]
        return "\n".join(redis_acl_lines(sha256_hex(admin), users)) + "\n"

    passwords = [clients[a.client].value(a.password_key) for a in accounts]
    return pulumi.Output.secret(pulumi.Output.all(admin_password, *passwords).apply(render))

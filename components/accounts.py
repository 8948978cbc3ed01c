"""Each client's own account on a data service, created as code once the server is healthy.

What the accounts are is derived from the catalog (devstack.credentials); how the server creates
them is its own module's SetupScript. The script travels on the command's stdin (a Pulumi
secret) into `docker exec -i`, so no password is ever an argument; it is idempotent and re-runs
whenever an account changes.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.secrets import ServiceSecret
from devstack.credentials import ClientAccount
from devstack.model import Login, Service, SetupScript


@dataclass(frozen=True)
class AccountSetupArgs:
    server: Service
    setup: SetupScript  # the server's own (its module's) way of creating accounts
    accounts: tuple[ClientAccount, ...]
    admin: ServiceSecret  # the server's own secret (its admin credentials)
    clients: Mapping[str, ServiceSecret]  # where each client's password lives
    container: docker.Container


def docker_exec(container: str, cli: Sequence[str], user: str | None = None) -> str:
    """The command line that runs `cli` in the container with its stdin attached (as `user`).
    Nothing secret goes on it, nor in its environment: a client reads the server's admin
    password from the container's own secret files, or needs none on its socket."""
    options = ["-u", user] if user else []
    return shlex.join(["docker", "exec", "-i", *options, container, *cli])


def _passwords(accounts: Sequence[ClientAccount], clients: Mapping[str, ServiceSecret]) -> list[pulumi.Output[str]]:
    return [clients[a.client].value(a.password_key) for a in accounts]


class AccountSetup(pulumi.ComponentResource):
    def __init__(self, name: str, args: AccountSetupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:accounts:AccountSetup", name, None, opts)
        setup, accounts = args.setup, args.accounts
        admin = pulumi.Output.all(*(args.admin.value(key) for key in setup.admin_keys))
        passwords = pulumi.Output.all(*_passwords(accounts, args.clients))

        def render(values: list[list[str]]) -> str:
            admin_values, client_passwords = values
            logins = list(zip(accounts, client_passwords, strict=True))
            return setup.script(logins, dict(zip(setup.admin_keys, admin_values, strict=True)))

        script = pulumi.Output.all(admin, passwords).apply(render)
        self.setup = command.local.Command(
            name,
            create=docker_exec(args.server.container_name, setup.cli, setup.user),
            stdin=pulumi.Output.secret(script),
            # Only the client's diagnostics reach the console (each server's client keeps the
            # script's lines out of them); what it printed is kept in the state as secrets.
            logging=command.local.Logging.STDERR,
            # A new container may be a new, empty server: set the accounts up again.
            triggers=[args.container.id],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[args.container], additional_secret_outputs=["stdout", "stderr"]
            ),
        )
        self.register_outputs({"server": args.server.name, "accounts": [a.user for a in accounts]})


def users_file(
    render: Callable[[str, Sequence[Login]], str],
    admin_password: pulumi.Output[str],
    accounts: tuple[ClientAccount, ...],
    clients: Mapping[str, ServiceSecret],
) -> pulumi.Output[str]:
    """A server's users as a file in its own secret (AccountServer.users_file), as a secret."""

    def rendered(values: list[str]) -> str:
        admin, *passwords = values
        return render(admin, list(zip(accounts, passwords, strict=True)))

    passwords = _passwords(accounts, clients)
    return pulumi.Output.secret(pulumi.Output.all(admin_password, *passwords).apply(rendered))

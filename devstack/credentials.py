"""Who needs which credentials: derived from the catalog's flows, never listed by hand.

A service that talks to a data service (a flow to the port its AccountServer names) gets its own
account there, and the password for it lives under the client's own path secret/<client>.
From the backups feature on, the management identity (host tooling, no container) has a backup
and a restore account on each data service that lists them (AccountServer.backup_roles), with
their passwords under its own path secret/management.
"""

from __future__ import annotations

from dataclasses import dataclass

from devstack.model import USERS_FILE_KEY, ClientRole, Service, account_user

MANAGEMENT = "management"  # the host tooling's identity (tools.backup)
MANAGEMENT_USERS = {ClientRole.BACKUP: "devstack_backup", ClientRole.RESTORE: "devstack_restore"}


@dataclass(frozen=True)
class ClientAccount:
    client: str
    system: str
    servers: tuple[str, ...]  # the containers where the account must exist
    user: str
    role: ClientRole

    @property
    def _key_prefix(self) -> str:
        # The management holds two accounts per system: the role tells them apart.
        return f"{self.system}_{self.role}" if self.role in MANAGEMENT_USERS else self.system

    @property
    def password_key(self) -> str:
        return f"{self._key_prefix}_password"

    @property
    def user_key(self) -> str:
        return f"{self._key_prefix}_user"


def client_accounts(selected: tuple[Service, ...]) -> tuple[ClientAccount, ...]:
    servers = {s.name: s.serves for s in selected if s.serves is not None}
    accounts: dict[tuple[str, str], ClientAccount] = {}
    for client in selected:
        own_system = client.serves.system if client.serves else None
        for flow in client.flows:
            serves = servers.get(flow.to)
            if serves is None or serves.port != flow.port or serves.system == own_system:
                continue  # cluster peers share the node password; they are not clients
            targets = (flow.to,)
            if serves.every_node and client.client_role is ClientRole.APP:
                targets = tuple(name for name, other in servers.items() if other.system == serves.system)
            key = (client.name, serves.system)
            if key in accounts:
                targets = tuple(dict.fromkeys(accounts[key].servers + targets))
            user = account_user(client.name)
            accounts[key] = ClientAccount(client.name, serves.system, targets, user, client.client_role)
    return tuple(accounts.values())


def management_accounts(selected: tuple[Service, ...]) -> tuple[ClientAccount, ...]:
    """The backup and restore accounts of the management identity: one per system and role, on
    every server of that system (each Redis node holds its own RDB)."""
    systems: dict[str, list[Service]] = {}
    for server in selected:
        if server.serves is not None and server.serves.backup_roles:
            systems.setdefault(server.serves.system, []).append(server)
    return tuple(
        ClientAccount(MANAGEMENT, system, tuple(s.name for s in servers), MANAGEMENT_USERS[role], role)
        for system, servers in systems.items()
        for role in servers[0].serves.backup_roles  # type: ignore[union-attr]
    )


def management_keys(accounts: tuple[ClientAccount, ...]) -> tuple[str, ...]:
    """Every key of secret/management, in a stable order."""
    return tuple(key for a in accounts if a.client == MANAGEMENT for key in (a.user_key, a.password_key))


def accounts_of(client: Service, accounts: tuple[ClientAccount, ...]) -> tuple[ClientAccount, ...]:
    return tuple(a for a in accounts if a.client == client.name)


def accounts_on(server: Service, accounts: tuple[ClientAccount, ...]) -> tuple[ClientAccount, ...]:
    return tuple(a for a in accounts if server.name in a.servers)


def secret_keys(service: Service, accounts: tuple[ClientAccount, ...]) -> tuple[str, ...]:
    """Every key of secret/<service>, in a stable order."""
    keys = [f.key for f in service.credentials.fields] if service.credentials else []
    for account in accounts_of(service, accounts):
        keys += [account.user_key, account.password_key]
    if service.serves is not None and service.serves.users_file is not None:
        keys.append(USERS_FILE_KEY)
    return tuple(keys)


def needs_secret(service: Service, accounts: tuple[ClientAccount, ...]) -> bool:
    return service.credentials is not None and bool(secret_keys(service, accounts))

"""Who needs which credentials: derived from the catalog's flows, never listed by hand.

A service that talks to a data service (a flow to its client port) gets its own account
there, and the password for it lives under the client's own path secret/<client>.
"""

from __future__ import annotations

from dataclasses import dataclass

from devstack.model import ClientRole, Service, account_user

# (server, port) -> the account system a flow to it needs
_ACCOUNT_PORTS = {
    ("postgres", "postgres"): "postgres",
    ("mysql", "mysql"): "mysql",
    ("mongodb", "mongodb"): "mongodb",
    ("rabbitmq", "amqp"): "rabbitmq",
    ("redis-1", "redis"): "redis",
    ("redis-2", "redis"): "redis",
    ("redis-3", "redis"): "redis",
}
ACCOUNT_SYSTEMS = ("postgres", "mysql", "mongodb", "rabbitmq", "redis")
USERS_ACL_KEY = "users_acl"  # a Redis node's users, as verifiers (no client's plaintext)


def account_system(service: Service) -> str | None:
    """The account system a service *serves*, if any."""
    systems = {system for (server, _), system in _ACCOUNT_PORTS.items() if server == service.name}
    return systems.pop() if systems else None


@dataclass(frozen=True)
class ClientAccount:
    client: str
    system: str
    servers: tuple[str, ...]  # the containers where the account must exist
    user: str
    role: ClientRole

    @property
    def password_key(self) -> str:
        return f"{self.system}_password"

    @property
    def user_key(self) -> str:
        return f"{self.system}_user"


def client_accounts(selected: tuple[Service, ...]) -> tuple[ClientAccount, ...]:
    names = {s.name for s in selected}
    redis_nodes = tuple(s.name for s in selected if account_system(s) == "redis")
    accounts: dict[tuple[str, str], ClientAccount] = {}
    for client in selected:
        own_system = account_system(client)
        for flow in client.flows:
            system = _ACCOUNT_PORTS.get((flow.to, flow.port))
            if system is None or flow.to not in names or system == own_system:
                continue  # cluster peers share the node password; they are not clients
            servers = (flow.to,)
            if system == "redis" and client.client_role is ClientRole.APP:
                servers = redis_nodes  # a cluster client is redirected to every node
            key = (client.name, system)
            if key in accounts:
                servers = tuple(dict.fromkeys(accounts[key].servers + servers))
            accounts[key] = ClientAccount(client.name, system, servers, account_user(client.name), client.client_role)
    return tuple(accounts.values())


def accounts_of(client: Service, accounts: tuple[ClientAccount, ...]) -> tuple[ClientAccount, ...]:
    return tuple(a for a in accounts if a.client == client.name)


def accounts_on(server: Service, accounts: tuple[ClientAccount, ...]) -> tuple[ClientAccount, ...]:
    return tuple(a for a in accounts if server.name in a.servers)


def secret_keys(service: Service, accounts: tuple[ClientAccount, ...]) -> tuple[str, ...]:
    """Every key of secret/<service>, in a stable order."""
    keys = [f.key for f in service.credentials.fields] if service.credentials else []
    for account in accounts_of(service, accounts):
        keys += [account.user_key, account.password_key]
    if account_system(service) == "redis":
        keys.append(USERS_ACL_KEY)
    return tuple(keys)


def needs_secret(service: Service, accounts: tuple[ClientAccount, ...]) -> bool:
    return service.credentials is not None and bool(secret_keys(service, accounts))

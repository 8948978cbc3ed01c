"""The account model shared by the data services: one client's account, and the checks every
server's account script makes (names, duplicates, reserved names).

Every client of a data service gets its own account there; the admin password stays with the
platform. Each server's module (devstack/services/) turns a list of accounts into the text that
`pulumi up` feeds on stdin to `docker exec -i dev-<server> <cli>`, so no secret ever appears in
a process's argv. Every such script is idempotent: it creates what is missing and otherwise
brings the existing account in line (a new password replaces the old one), so it runs on every
`pulumi up`. Accounts dropped from the list are left in place (data is never deleted here).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from devstack.model import ClientRole, Login

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")
MAX_NAME_LENGTH = 32  # MySQL 8's limit for user names; PostgreSQL allows 63 bytes


class AccountKind(StrEnum):
    APP = "app"  # a client: everything on its own database, nothing elsewhere
    MONITOR = "monitor"  # metrics collection: server-wide statistics, read-only, no database
    BACKUP = "backup"  # the management identity's dumps: reads everything, writes nothing
    RESTORE = "restore"  # the management identity's restores: loads beside the live data, swaps in


@dataclass(frozen=True)
class Account:
    """One client's account on one data service. The password never shows in repr()."""

    name: str
    password: str = field(repr=False)
    database: str | None = None  # the client's own database (created, owned by it); APP only
    kind: AccountKind = AccountKind.APP

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", AccountKind(self.kind))  # "monitor" works too; typos do not
        validate_name(self.name, "account name")
        if self.database is not None:
            validate_name(self.database, f"database of account {self.name!r}")
            if self.kind is not AccountKind.APP:
                raise ValueError(f"account {self.name!r}: a {self.kind} account has no database of its own")
        if not self.password:
            raise ValueError(f"account {self.name!r}: empty password")
        if "\x00" in self.password:
            raise ValueError(f"account {self.name!r}: the password contains a NUL character")


def validate_name(name: str, what: str = "name") -> str:
    """An account or database name: lowercase letter first, then [a-z0-9_-], at most 32 characters."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{what} must match [a-z][a-z0-9_-]*, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} must have at most {MAX_NAME_LENGTH} characters, got {name!r}")
    return name


def check_unique(accounts: Sequence[Account]) -> None:
    names: set[str] = set()
    databases: set[str] = set()
    for account in accounts:
        if account.name in names:
            raise ValueError(f"account {account.name!r} is listed twice")
        names.add(account.name)
        if account.database is not None:
            if account.database in databases:
                raise ValueError(f"database {account.database!r} is claimed by two accounts")
            databases.add(account.database)


def check_reserved(
    accounts: Iterable[Account],
    roles: frozenset[str],
    databases: frozenset[str],
    server: str,
    reserved_prefix: str | None = None,
) -> None:
    for account in accounts:
        if account.name in roles or (reserved_prefix is not None and account.name.startswith(reserved_prefix)):
            raise ValueError(f"{server}: account name {account.name!r} is reserved")
        if account.database is not None and account.database in databases:
            raise ValueError(f"{server}: database name {account.database!r} is reserved")


_SERVER_WIDE = {
    ClientRole.MONITOR: AccountKind.MONITOR,
    ClientRole.BACKUP: AccountKind.BACKUP,
    ClientRole.RESTORE: AccountKind.RESTORE,
}


def login_account(login: Login, databases: bool = True) -> Account:
    """The account a client gets on a server: read-only statistics for a monitor, server-wide
    rights without a database for the management's backup and restore accounts; otherwise its
    own database named after it, unless the server has no databases (or it is PgBouncer's lookup)."""
    client, password = login
    if client.role in _SERVER_WIDE:
        return Account(client.user, password, kind=_SERVER_WIDE[client.role])
    database = client.user if databases and client.role is not ClientRole.AUTH else None
    return Account(client.user, password, database=database)


_SH_SAFE = re.compile(r"[A-Za-z0-9_./:=@%+-]+")


def sh_quote(value: str) -> str:
    """A POSIX sh single-quoted word."""
    if _SH_SAFE.fullmatch(value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"

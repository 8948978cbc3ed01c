"""PgBouncer's own users (its auth_file, a users file in its own secret) and its stats_users: the
auth_user's password first, each monitoring client by SCRAM verifier only, and the exporter's
connection per TLS mode. PgBouncer reading such a file for real: tests/test_pgbouncer_exporter_real."""

from __future__ import annotations

import pytest

from devstack.accounts import Account, AccountKind
from devstack.catalog import SERVICES_BY_NAME, services_for
from devstack.credentials import ClientAccount
from devstack.model import ClientRole, Profile
from devstack.phases import TlsMode
from devstack.services.database_exporters import PGBOUNCER_EXPORTER, pgbouncer_connection
from devstack.services.pgbouncer import PGBOUNCER, stats_users, users_file
from devstack.services.postgres import scram_salt, scram_verifier


def _monitor(user: str = "pgbouncer_exporter", role: ClientRole = ClientRole.MONITOR) -> ClientAccount:
    return ClientAccount("pgbouncer-exporter", "pgbouncer", ("pgbouncer",), user, role)


def test_the_auth_user_first_then_each_monitor_by_verifier() -> None:
    text = users_file("auth-secret", [(_monitor(), "exporter-secret")])
    first, second = text.splitlines()
    assert first == '"pgbouncer" "auth-secret"'
    assert second.startswith('"pgbouncer_exporter" "SCRAM-SHA-256$4096:')
    assert "exporter-secret" not in text
    assert text.endswith("\n")
    assert users_file("auth-secret", [(_monitor(), "exporter-secret")]) == text  # stable: no re-render


def test_the_verifier_is_the_one_postgres_would_store() -> None:
    account = Account("pgbouncer_exporter", "exporter-secret", kind=AccountKind.MONITOR)
    expected = scram_verifier("exporter-secret", scram_salt(account, "auth-secret"))
    assert users_file("auth-secret", [(_monitor(), "exporter-secret")]).splitlines()[1].endswith(f' "{expected}"')


def test_quotes_are_doubled_and_control_characters_refused() -> None:
    assert users_file('a"b', []) == '"pgbouncer" "a""b"\n'
    with pytest.raises(ValueError, match="control character"):
        users_file("a\nb", [])


def test_only_monitors_have_an_account_of_their_own() -> None:
    with pytest.raises(ValueError, match="may not have an account"):
        users_file("auth-secret", [(_monitor(role=ClientRole.APP), "x")])


def test_stats_users_are_the_monitors_that_run() -> None:
    full = services_for(frozenset({Profile.FULL}), frozenset({"databaseExporters"}))
    assert stats_users(PGBOUNCER, full) == ("pgbouncer_exporter",)
    assert stats_users(PGBOUNCER, services_for(frozenset({Profile.FULL}))) == ()
    assert SERVICES_BY_NAME["pgbouncer-exporter"].client_role is ClientRole.MONITOR


def test_the_connection_string_holds_no_password_and_verifies_once_required() -> None:
    plain = pgbouncer_connection(TlsMode.OFF)
    assert plain == "postgres://pgbouncer_exporter@pgbouncer:5432/pgbouncer?sslmode=disable"
    required = pgbouncer_connection(TlsMode.REQUIRED, "/tls")
    assert required.endswith("?sslmode=verify-full&sslrootcert=/tls/ca.crt")
    tls = PGBOUNCER_EXPORTER.tls
    assert tls is not None
    assert tls.settings is not None
    assert tls.settings(PGBOUNCER_EXPORTER, TlsMode.DUAL).env == {}
    settings = tls.settings(PGBOUNCER_EXPORTER, TlsMode.REQUIRED)
    assert settings.env["PGBOUNCER_EXPORTER_CONNECTION_STRING"].startswith("postgres://pgbouncer_exporter@")
    assert any(arg.startswith("--web.config.file=") for arg in settings.args)

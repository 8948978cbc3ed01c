"""Credentials.uploaded_because (the database exporters: busybox images that cannot verify
Vault's certificate): at phases 1, 2 and 4 of the full profile the monitoring password reaches
the container only as a 0400 Pulumi-secret upload, never in its environment, command line or
labels, and the container gets no Vault login (no AppRole files, no wrapper)."""

from __future__ import annotations

import json

import pytest

from devstack.delivery import ROLE_ID_PATH, SECRET_ID_PATH, TOKEN_PATH, WRAPPER_PATH, render
from devstack.model import SECRETS_DIR, ValueSyntax
from devstack.services.database_exporters import EXPORTERS, MY_CNF, PGPASS
from tests.conftest import CONTAINER, PlanFactory
from tools.engine import Secret, unwrap


@pytest.mark.parametrize("phase", [1, 2, 4])
def test_the_exporters_get_their_password_only_as_a_secret_upload(shared_plan: PlanFactory, phase: int) -> None:
    run = shared_plan(f"phase={phase}", "profiles=full")
    for service in EXPORTERS:
        record = run.one(CONTAINER, service.name)
        inputs = record.inputs
        uploads = {u["file"]: u for u in inputs["uploads"]}
        secret = {path for path, u in uploads.items() if isinstance(u["content"], Secret)}
        secret_files = {path: uploads[path] for path in secret if path.startswith(SECRETS_DIR)}
        assert secret - set(secret_files) <= {"/devstack/tls/server.key"}, service.name  # its own leaf key
        assert secret_files
        assert all(u["permissions"] == "0400" and u["owner"] == "65534" for u in secret_files.values())
        passwords = [unwrap(u["content"]) for p, u in secret_files.items() if p.endswith("_password")]
        if service.name == "mysql-exporter":  # its password is inside the filled-in my.cnf
            cnf = unwrap(uploads[MY_CNF]["content"]).splitlines()
            passwords = [line.split(" = ")[1] for line in cnf if line.startswith("password")]
        if service.name == "pgbouncer-exporter":  # libpq's password file, which PGPASSFILE names
            (line,) = unwrap(uploads[PGPASS]["content"]).splitlines()
            assert line.startswith("*:*:pgbouncer:pgbouncer_exporter:"), service.name
            assert line.split(":")[4] in passwords
            assert f"PGPASSFILE={PGPASS}" in inputs["envs"]
        assert passwords
        assert all(len(p) >= 16 for p in passwords)
        elsewhere = json.dumps(
            [inputs.get("envs", []), inputs.get("entrypoints", []), inputs.get("command", []), inputs.get("labels", [])]
        )
        assert not [p for p in passwords if p in elsewhere], service.name
        assert not {ROLE_ID_PATH, SECRET_ID_PATH, TOKEN_PATH, WRAPPER_PATH} & set(uploads)
        assert inputs["entrypoints"] == list(service.credentials.entrypoint)  # type: ignore[union-attr]


def test_render_fills_line_templates_and_refuses_the_rest() -> None:
    assert render("user = {{u}}\n", {"u": "bob"}, ValueSyntax.LINE) == "user = bob\n"
    with pytest.raises(ValueError, match="LINE only"):
        render("{{u}}", {"u": "bob"}, ValueSyntax.JSON)
    with pytest.raises(ValueError, match="control character"):
        render("{{u}}", {"u": "a\nb"}, ValueSyntax.LINE)
    with pytest.raises(ValueError, match="does not have"):
        render("{{v}}", {"u": "bob"}, ValueSyntax.LINE)

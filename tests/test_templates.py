"""Every template the plan ships tells the wrapper its syntax (the hostile values themselves:
tests/test_template_injection, which runs the wrapper and the formats' own parsers)."""

from __future__ import annotations

from devstack.catalog import SERVICES
from devstack.delivery import delivery
from devstack.model import TEMPLATE_DIR, ValueSyntax
from tests.conftest import PlanFactory, containers


def test_every_catalog_template_names_its_syntax() -> None:
    templates = [t for s in SERVICES if s.credentials for t in s.credentials.templates]
    assert len(templates) >= 4
    assert all(isinstance(t.syntax, ValueSyntax) for t in templates)
    for service in SERVICES:
        if service.credentials and service.credentials.templates:
            entries = delivery(service, approle=True).env["DEVSTACK_TEMPLATES"].split()
            assert [e.rsplit(":", 1)[1] for e in entries] == [t.syntax for t in service.credentials.templates]


def test_every_planned_template_entry_has_a_known_syntax(shared_plan: PlanFactory) -> None:
    found = 0
    for name, inputs in containers(shared_plan("profiles=full,reference", "phase=4")).items():
        env = dict(entry.split("=", 1) for entry in inputs.get("envs", []))
        uploads = {u["file"] for u in inputs.get("uploads", [])}
        for entry in env.get("DEVSTACK_TEMPLATES", "").split():
            template, dest, mode, syntax = entry.split(":")
            assert f"{TEMPLATE_DIR}/{template}" in uploads, name
            assert dest.startswith("/")
            assert mode == "0400"
            assert ValueSyntax(syntax).value == syntax, name
            found += 1
    assert found >= 7  # rabbitmq, three Redis nodes and their three exporters

"""The pack as the engine meets it: `python -m pulumi.policy` runs policies/crossguard (as the
language host does), the pack serves Pulumi's Analyzer gRPC service on 127.0.0.1, and this test
plays the engine: it configures the pack with `tools.policy config` and sends it every resource
of an offline plan, then one planted violation. The real CLI in between is
tests/test_crossguard_real.py's part."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policies.crossguard import validators
from tests.conftest import PlanFactory
from tools.engine import masked
from tools.policy import pack_config, settings_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pulumi.policy", "127.0.0.1:1", str(ROOT / "policies/crossguard")],
        cwd=ROOT / "policies/crossguard",
        # The pack prints its port without flushing: to a pipe, block-buffered, readline() below
        # would wait forever unless the environment happens to set PYTHONUNBUFFERED.
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            process.kill()
            pytest.fail(f"the pack did not start: {port!r} {process.communicate(timeout=10)[1]}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.kill()
        process.communicate(timeout=10)


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    json_format.ParseDict(value, struct)
    return struct


def _configure(analyzer: analyzer_pb2_grpc.AnalyzerStub, config: dict[str, dict[str, Any]]) -> None:
    policy_config = {
        name: analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.MANDATORY, properties=_struct(values))
        for name, values in config.items()
    }
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=policy_config))


def _analyze(analyzer: analyzer_pb2_grpc.AnalyzerStub, record: Any, inputs: dict[str, Any]) -> list[tuple[str, str]]:
    request = analyzer_pb2.AnalyzeRequest(
        type=record.type,
        properties=_struct(inputs),
        urn=record.urn,
        name=record.name,
        options=analyzer_pb2.AnalyzerResourceOptions(protect=bool(record.options.get("protect"))),
    )
    return [(d.policyName, d.message) for d in analyzer.Analyze(request).diagnostics]


def test_the_pack_describes_its_policies(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "devstack-invariants"
    assert [p.name for p in info.policies] == list(validators.RULE_NAMES)
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_the_pack_passes_a_clean_plan_and_reports_a_planted_port(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, shared_plan: PlanFactory
) -> None:
    run = shared_plan("profiles=full,reference", "phase=1")
    _configure(analyzer, pack_config(settings_of(run)))
    found = {}
    for record in run.resources:
        if record.custom:
            found[(record.type, record.name)] = _analyze(analyzer, record, masked(record.inputs))
    assert {key: d for key, d in found.items() if d} == {}  # nothing, since issue 10's cAdvisor fix
    postgres = run.one(validators.CONTAINER, "postgres")
    planted = masked(postgres.inputs)
    planted["ports"][0]["ip"] = "0.0.0.0"
    (diagnostic,) = _analyze(analyzer, postgres, planted)
    assert diagnostic[0] == "ports-within-bind-address"
    assert "binds 0.0.0.0, beyond the chosen bind address 127.0.0.1" in diagnostic[1]


def test_the_stack_policy_sees_the_tiers(analyzer: analyzer_pb2_grpc.AnalyzerStub, shared_plan: PlanFactory) -> None:
    run = shared_plan("profiles=full,reference", "phase=1")
    _configure(analyzer, pack_config(settings_of(run)))

    def stack(plant: bool) -> list[tuple[str, str]]:
        resources = []
        for record in run.resources:
            if not record.custom:
                continue
            inputs = masked(record.inputs)
            if plant and (record.type, record.name) == (validators.CONTAINER, "grafana"):
                inputs["networksAdvanced"].append({"name": "dev-data-network"})
            resources.append(
                analyzer_pb2.AnalyzerResource(
                    type=record.type, properties=_struct(inputs), urn=record.urn, name=record.name
                )
            )
        response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
        return [(d.policyName, d.message) for d in response.diagnostics]

    assert stack(plant=False) == []
    planted = stack(plant=True)
    assert planted
    assert {name for name, _ in planted} == {validators.RULE_TIERS}
    assert all("grafana (observability)" in message and "dev-data-network" in message for _, message in planted)


def test_at_phase_4_the_pack_passes_the_hardened_plan_and_reports_what_is_taken_away(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, shared_plan: PlanFactory
) -> None:
    """The hardening rule with the catalog's exceptions, and the PID-limit stack rule, in the pack."""
    run = shared_plan("profiles=full,reference", "phase=4")
    config = pack_config(settings_of(run))
    assert config["strict-hardening"]["enforce"] is True
    _configure(analyzer, config)
    containers = [r for r in run.resources if r.type == validators.CONTAINER]
    assert all(_analyze(analyzer, r, masked(r.inputs)) == [] for r in containers)
    grafana = run.one(validators.CONTAINER, "grafana")
    planted = masked(grafana.inputs)
    planted.pop("securityOpts")
    ((rule, message),) = _analyze(analyzer, grafana, planted)
    assert rule == "strict-hardening"
    assert message.endswith("\nno-new-privileges is not set")  # after the policy's description

    def stack(without: str | None) -> list[tuple[str, str]]:
        resources = [
            analyzer_pb2.AnalyzerResource(type=r.type, properties=_struct(masked(r.inputs)), urn=r.urn, name=r.name)
            for r in run.resources
            if r.custom and r.name != without
        ]
        response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
        return [(d.policyName, d.message) for d in response.diagnostics]

    assert stack(None) == []
    (missing,) = stack("grafana-pids-limit")
    assert missing[0] == validators.RULE_PIDS
    assert "docker update --pids-limit 256 dev-grafana" in missing[1]

"""The validators as CrossGuard policies: one resource policy per rule, one stack policy for the
tiers. Kept apart from __main__.py, whose PolicyPack serves the engine forever once built."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from policies.crossguard import validators
from policies.crossguard.validators import Resource, Rule

PACK_NAME = "devstack-invariants"


def plain(value: Any) -> Any:
    """The engine's proxied properties as plain dicts and lists, an unknown value as UNKNOWN
    (the proxy raises on reading one; the rules skip it instead)."""
    if isinstance(value, Mapping):
        result = {}
        for key in value:
            try:
                result[key] = plain(value[key])
            except UnknownValueError:
                result[key] = validators.UNKNOWN
        return result
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(validators.UNKNOWN)
        return items
    return value


def _schema(properties: Mapping[str, Any]) -> PolicyConfigSchema | None:
    return PolicyConfigSchema(properties=dict(properties)) if properties else None


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        resource = Resource(
            type=args.resource_type,
            name=args.name,
            inputs=plain(args.props),
            urn=args.urn,
            protect=bool(args.opts.protect),
            retain_on_delete=None,  # not in the analyzer protocol: the offline check covers it
        )
        for message in rule.check(resource, args.get_config() or {}):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(rule.config),
    )


def stack_resource(resource: PolicyResource) -> Resource:
    return Resource(
        type=resource.resource_type,
        name=resource.name,
        inputs=plain(resource.props),
        urn=resource.urn,
        protect=bool(resource.opts.protect),
    )


def _tiers_policy() -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [stack_resource(r) for r in args.resources]
        for violation in validators.check_tiers(resources, args.get_config() or {}):
            report_violation(violation.message, violation.resource)

    return StackValidationPolicy(
        name=validators.RULE_TIERS,
        description=validators.TIERS_DESCRIPTION,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_schema(validators.TIERS_CONFIG),
    )


def _pids_policy() -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [stack_resource(r) for r in args.resources]
        for violation in validators.check_pids_applied(resources, args.get_config() or {}):
            report_violation(violation.message, violation.resource)

    return StackValidationPolicy(
        name=validators.RULE_PIDS,
        description=validators.PIDS_DESCRIPTION,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def build_policies() -> list[Policy]:
    return [*(_resource_policy(rule) for rule in validators.RULES), _tiers_policy(), _pids_policy()]

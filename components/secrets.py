"""One service's credentials: generated passwords, kept in Vault at secret/<service>."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_random as random
import pulumi_vault as vault

PASSWORD_LENGTH = 32  # alphanumeric: about 190 bits, and safe in every config syntax

Derived = Callable[[Mapping[str, pulumi.Output[str]]], pulumi.Output[str]]


@dataclass(frozen=True)
class ServiceSecretArgs:
    service: str
    keys: tuple[str, ...]  # every key of the secret, in order
    fixed: Mapping[str, str]  # non-secret values (user names) kept beside the passwords
    shared: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)  # e.g. a cluster's password
    # Functions of the secret's other values (a server's users file, which may hold its own
    # generated password), computed once those exist.
    derived: Mapping[str, Derived] = field(default_factory=dict)
    mount: pulumi.Input[str] = "secret"
    provider: pulumi.ProviderResource | None = None


def generate_password(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    password = random.RandomPassword(
        name, length=PASSWORD_LENGTH, special=False, opts=pulumi.ResourceOptions(parent=parent)
    )
    return password.result


class ServiceSecret(pulumi.ComponentResource):
    values: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ServiceSecretArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:secrets:ServiceSecret", name, None, opts)
        self.values = {}
        for key in args.keys:
            if key in args.fixed:
                self.values[key] = pulumi.Output.from_input(args.fixed[key])
            elif key in args.shared:
                self.values[key] = args.shared[key]
            elif key in args.derived:
                continue  # below, once every other value exists
            else:
                self.values[key] = generate_password(f"{name}-{key}", self)
        for key in args.keys:
            if key in args.derived:
                self.values[key] = args.derived[key](dict(self.values))
        self.values = {key: self.values[key] for key in args.keys}  # the secret's own key order
        data = pulumi.Output.secret(pulumi.Output.json_dumps(self.values))
        self.secret = vault.kv.SecretV2(
            name,
            mount=args.mount,
            name=args.service,
            data_json=data,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.path = pulumi.Output.concat(args.mount, "/", args.service)
        self.register_outputs({"path": self.path})

    def value(self, key: str) -> pulumi.Output[str]:
        return self.values[key]

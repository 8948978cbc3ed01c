"""One least-privilege Vault identity: its reviewed policy, its AppRole, its current secret_id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_vault as vault

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies" / "vault"
TOKEN_TTL = 3600  # an hour: the wrapper logs in once at start and never renews
TOKEN_MAX_TTL = 86400
SECRET_ID_TTL = 30 * 86400  # restarts keep working for 30 days after the last `pulumi up`


def policy_document(identity: str) -> str:
    return (POLICY_DIR / f"{identity}.hcl").read_text()


@dataclass(frozen=True)
class ServiceIdentityArgs:
    identity: str
    bound_cidrs: tuple[str, ...]  # the container's own address, or where the host's connections come from
    backend: pulumi.Input[str]
    provider: pulumi.ProviderResource
    rotation: str  # a new value mints a new secret_id (see rotation_period in the settings)


class ServiceIdentity(pulumi.ComponentResource):
    def __init__(self, name: str, args: ServiceIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:identity:ServiceIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.policy = vault.Policy(name, name=args.identity, policy=policy_document(args.identity), opts=child)
        cidrs = list(args.bound_cidrs) or None
        self.role = vault.approle.AuthBackendRole(
            name,
            backend=args.backend,
            role_name=args.identity,
            token_policies=[self.policy.name],
            # Its own policy only: not even Vault's `default` policy.
            token_no_default_policy=True,
            token_ttl=TOKEN_TTL,
            token_max_ttl=TOKEN_MAX_TTL,
            token_type="service",
            secret_id_ttl=SECRET_ID_TTL,
            secret_id_num_uses=0,  # a restart logs in again with the same secret_id
            secret_id_bound_cidrs=cidrs,
            token_bound_cidrs=cidrs,
            opts=child,
        )
        self.secret_id_resource = vault.approle.AuthBackendRoleSecretId(
            name,
            backend=args.backend,
            role_name=self.role.role_name,
            cidr_lists=cidrs,
            # Changing metadata replaces the secret_id: a new rotation period mints a new one.
            metadata=pulumi.Output.json_dumps({"rotation": args.rotation, "identity": args.identity}),
            opts=child,
        )
        self.role_id = pulumi.Output.secret(self.role.role_id)
        self.secret_id = pulumi.Output.secret(self.secret_id_resource.secret_id)
        self.register_outputs({"identity": args.identity, "policy": self.policy.name})

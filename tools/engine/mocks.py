"""Mocks that answer like each provider would, deterministically.

Values derive from the resource's URN, so two runs agree; a `MockState` remembers what each
URN produced, and a resource whose inputs did not change gets the same outputs back, as
the engine would keep them in state.
"""

from __future__ import annotations

import hashlib
import string
from typing import Any

import pulumi

from tools.engine import tls_mocks
from tools.engine.context import Handler, MockContext, MockState, StoredResource
from tools.engine.provider_rules import SECRET_OUTPUTS, changes_force_replacement
from tools.engine.values import Secret, unwrap


def _echo(ctx: MockContext, id_: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    return id_, {**ctx.inputs, **extra}


def _docker_network(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    return _echo(ctx, ctx.hex("id"), driver=ctx.inputs.get("driver", "bridge"), scope="local")


def _docker_volume(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    name = ctx.inputs.get("name", ctx.name)
    return _echo(ctx, name, driver="local", mountpoint=f"/var/lib/docker/volumes/{name}/_data")


def _docker_remote_image(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    # The image id follows the reference, so a new tag means a new id, as with a real pull.
    reference = str(ctx.inputs["name"])
    digest = hashlib.sha256(reference.encode()).hexdigest()
    repository = reference.rsplit(":", 1)[0]
    return _echo(
        ctx, f"sha256:{digest}{reference}", imageId=f"sha256:{digest}", repoDigest=f"{repository}@sha256:{digest}"
    )


def _docker_container(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    return _echo(ctx, ctx.hex("id"), exitCode=None, networkDatas=[])


def _password_alphabet(inputs: dict[str, Any]) -> str:
    alphabet = ""
    if inputs.get("upper", True):
        alphabet += string.ascii_uppercase
    if inputs.get("lower", True):
        alphabet += string.ascii_lowercase
    if inputs.get("numeric", True):
        alphabet += string.digits
    if inputs.get("special", True):
        alphabet += inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
    return alphabet


def _random_text(ctx: MockContext) -> str:
    alphabet = _password_alphabet(ctx.inputs)
    length = int(ctx.inputs.get("length", 16))
    stream = b"".join(ctx.seed("random", str(i)) for i in range(length // 32 + 1))
    return "".join(alphabet[b % len(alphabet)] for b in stream[:length])


def _random_password(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    result = _random_text(ctx)
    return _echo(ctx, "none", result=result, bcryptHash=f"$2a$10${ctx.hex('bcrypt', length=53)}")


def _random_string(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    result = _random_text(ctx)
    return _echo(ctx, result, result=result)


def _command(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    # What the bootstrap script prints against a fresh Vault: one JSON line with the root token,
    # or at strict (DEVSTACK_ROOT_TOKEN=retire) the provisioner's role_id and secret_id.
    environment = ctx.inputs.get("environment") or {}
    stdout = ""
    if environment.get("DEVSTACK_ROOT_TOKEN") == "retire":
        stdout = f'{{"role_id":"{_uuid(ctx, "provisioner-role-id")}","secret_id":"{_uuid(ctx, "provisioner-secret")}"}}'
    elif "DEVSTACK_VAULT_INIT_FILE" in environment:
        stdout = '{"root_token":"hvs.' + ctx.hex("root-token", length=24) + '"}'
    return _echo(ctx, ctx.hex("id", length=16), stdout=stdout, stderr="")


def _vault_mount(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    path = str(ctx.inputs["path"])
    return _echo(ctx, path, accessor=f"{ctx.inputs.get('type', 'kv')}_{ctx.hex('accessor', length=8)}")


def _vault_kv_secret(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    path = f"{ctx.inputs['mount']}/data/{ctx.inputs['name']}"
    return _echo(ctx, path, path=path, metadata={"version": "1"})


def _uuid(ctx: MockContext, salt: str) -> str:
    h = ctx.hex(salt, length=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _approle_role(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    # Vault generates a role_id unless one is given.
    role_id = ctx.inputs.get("roleId") or _uuid(ctx, "role-id")
    path = f"auth/{ctx.inputs['backend']}/role/{ctx.inputs['roleName']}"
    return _echo(ctx, path, roleId=role_id)


def _approle_secret_id(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    accessor = _uuid(ctx, "accessor")
    return _echo(ctx, accessor, secretId=_uuid(ctx, "secret-id"), accessor=accessor, wrappingToken="")


def _vault_auth_backend(ctx: MockContext) -> tuple[str, dict[str, Any]]:
    path = str(ctx.inputs.get("path") or ctx.inputs["type"])
    return _echo(ctx, path, path=path, accessor=f"auth_{ctx.inputs['type']}_{ctx.hex('accessor', length=8)}")


HANDLERS: dict[str, Handler] = {
    "vault:appRole/authBackendRole:AuthBackendRole": _approle_role,
    "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId": _approle_secret_id,
    "vault:index/authBackend:AuthBackend": _vault_auth_backend,
    "command:local:Command": _command,
    "vault:index/mount:Mount": _vault_mount,
    "vault:kv/secretV2:SecretV2": _vault_kv_secret,
    "docker:index/network:Network": _docker_network,
    "docker:index/volume:Volume": _docker_volume,
    "docker:index/remoteImage:RemoteImage": _docker_remote_image,
    "docker:index/container:Container": _docker_container,
    "random:index/randomPassword:RandomPassword": _random_password,
    "random:index/randomString:RandomString": _random_string,
    # The tls provider's mocks make real keys and certificates (kept in their own module).
    **tls_mocks.HANDLERS,
}


def _contains_secret(value: Any, secret_type: type) -> bool:
    if isinstance(value, secret_type):
        return True
    if isinstance(value, dict):
        return any(_contains_secret(v, secret_type) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v, secret_type) for v in value)
    return False


class DevstackMocks(pulumi.runtime.Mocks):
    def __init__(self, state: MockState) -> None:
        self.state = state

    def register(
        self, urn: str, type_token: str, name: str, inputs: dict[str, Any], custom: bool
    ) -> tuple[str, dict[str, Any]]:
        """Called by the recording monitor with inputs that still carry Secret markers."""
        if not custom:
            return "", {}
        plain = unwrap(inputs)
        previous = self.state.resources.get(urn)
        generation = 0
        if previous is not None:
            if previous.inputs == plain:
                return previous.id, previous.outputs
            changed = tuple(k for k in set(previous.inputs) | set(plain) if previous.inputs.get(k) != plain.get(k))
            replaced = changes_force_replacement(type_token, changed)
            generation = previous.generation + 1 if replaced else previous.generation
        handler = HANDLERS.get(type_token)
        ctx = MockContext(urn, type_token, name, plain, generation)
        id_, state = handler(ctx) if handler else _echo(ctx, f"{name}-id")
        # As the engine does: a property that carried a secret anywhere comes back secret whole.
        secret_inputs = {k for k, v in inputs.items() if _contains_secret(v, Secret)}
        secret_names = SECRET_OUTPUTS.get(type_token, frozenset()) | secret_inputs
        outputs = {k: Secret(v) if k in secret_names else v for k, v in state.items()}
        self.state.resources[urn] = StoredResource(plain, id_, outputs, generation)
        return id_, outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        # Reached only through ReadResource (get functions); registrations go through register().
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None

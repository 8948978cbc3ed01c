"""Vault: its container, the zero-touch bootstrap, the provider that configures it, the KV mount."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_vault as vault

from components.service import ServiceContainer, ServiceContainerArgs

BOOTSTRAP = "sh ./scripts/vault-bootstrap.sh"
KV_PATH = "secret"
# The provisioner (strict): its policy document, and the AppRole mount it logs in on.
PROVISIONER_POLICY = "./policies/vault/provisioner.hcl"
PROVISIONER_LOGIN = "auth/approle-provisioner/login"
# The CA is public data, but written whole or not at all: a half-written CA would fail every TLS
# check. Its folder is the recovery file's (0700, as the bootstrap makes it): this step may run
# first, so it creates the missing folders 0700 whatever the caller's umask, and makes its own
# folder private even if an earlier version left it open.
WRITE_CA = (
    'dir=$(dirname "$DEVSTACK_CA_FILE") && (umask 077 && mkdir -p "$dir") && chmod 700 "$dir" '
    '&& umask 022 && cat >"$DEVSTACK_CA_FILE.tmp" && mv -f "$DEVSTACK_CA_FILE.tmp" "$DEVSTACK_CA_FILE"'
)


@dataclass(frozen=True)
class VaultServerArgs:
    container: ServiceContainerArgs
    host_address: str  # how this machine reaches Vault, e.g. http://127.0.0.1:8200
    init_file: str  # the 0600 recovery file (unseal keys, root token) on this machine
    run_id: str  # differs on every `pulumi up`, so the unseal step runs each time
    container_port: int  # the port of Vault's container behind host_address
    audit_file: str | None = None  # the file audit device's log in the container; None: no device
    # strict: the bootstrap sets up the provisioner, keeps its ids in this file (0600) and revokes
    # the root token; the provider logs in as the provisioner. None: a root token, as below strict.
    provisioner_file: str | None = None
    # strict: where the provisioner may log in from and use its tokens (CIDR blocks, not secret)
    provisioner_cidrs: tuple[str, ...] = ()
    # TLS on: where this machine keeps the CA that Vault's certificate chains to, and its PEM.
    ca_file: str | None = None
    ca_pem: pulumi.Input[str] | None = None


def _root_token(stdout: str) -> str:
    return str(json.loads(stdout)["root_token"])


def _login_field(name: str) -> Callable[[str], str]:
    return lambda stdout: str(json.loads(stdout)[name])


class VaultServer(pulumi.ComponentResource):
    """Runs Vault, initialises it once, unseals it on every `pulumi up`, mounts KV v2."""

    def __init__(self, name: str, args: VaultServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:vault:VaultServer", name, None, opts)
        self.server = ServiceContainer(name, args.container, opts=pulumi.ResourceOptions(parent=self))
        # The bootstrap checks first that host_address is this container's published port: the
        # keys go to our Vault (over plain HTTP at phase 0), never to whatever else answers there.
        environment: dict[str, pulumi.Input[str]] = {
            "VAULT_ADDR": args.host_address,
            "DEVSTACK_VAULT_INIT_FILE": args.init_file,
            "DEVSTACK_VAULT_CONTAINER": self.server.container.id,
            "DEVSTACK_VAULT_CONTAINER_PORT": str(args.container_port),
            # keep: a root token that works (made anew with the unseal keys if it was revoked);
            # retire (strict): the provisioner's ids instead, and the root token revoked
            "DEVSTACK_ROOT_TOKEN": "keep" if args.provisioner_file is None else "retire",
        }
        if args.provisioner_file is not None:
            environment["DEVSTACK_PROVISIONER_FILE"] = args.provisioner_file
            environment["DEVSTACK_PROVISIONER_POLICY"] = PROVISIONER_POLICY
            environment["DEVSTACK_PROVISIONER_CIDRS"] = ",".join(args.provisioner_cidrs)
        init_depends: list[pulumi.Resource] = [self.server.container]
        self.ca_file = None
        if args.ca_file is not None and args.ca_pem is not None:
            # The bootstrap and the provider on this machine verify Vault against this file. A new
            # CA is an update, which writes the file again (no trigger: a replacement would run
            # the old delete after the new create, removing the file).
            self.ca_file = command.local.Command(
                f"{name}-ca-file",
                create=WRITE_CA,
                delete='rm -f "$DEVSTACK_CA_FILE"',
                stdin=args.ca_pem,
                environment={"DEVSTACK_CA_FILE": args.ca_file},
                opts=pulumi.ResourceOptions(parent=self),
            )
            environment["DEVSTACK_VAULT_CA"] = args.ca_file
            init_depends.append(self.ca_file)
        # Initialise (first run only) and unseal; stdout carries the root token, so it is a
        # secret, and only stderr (progress, never a key or token) reaches the console.
        self.init = command.local.Command(
            f"{name}-init",
            create=BOOTSTRAP,
            environment=environment,
            logging=command.local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=init_depends, additional_secret_outputs=["stdout"]),
        )
        # A restarted Vault comes back sealed: this step unseals it on every `pulumi up`.
        self.unseal = command.local.Command(
            f"{name}-unseal",
            create=BOOTSTRAP,
            environment={**environment, "DEVSTACK_NO_INIT": "1", "DEVSTACK_RUN": args.run_id},
            logging=command.local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.init], additional_secret_outputs=["stdout"]),
        )
        # What the provider uses comes from the step that runs on every `pulumi up` (it checks the
        # root token and makes a new one if Vault refuses it), never from the first init alone:
        # the state never pins a revoked token. At strict that step prints no token at all.
        self.root_token: pulumi.Output[str] | None = None
        auth_login = None
        if args.provisioner_file is None:
            self.root_token = pulumi.Output.secret(self.unseal.stdout.apply(_root_token))
        else:
            auth_login = vault.ProviderAuthLoginArgs(
                path=PROVISIONER_LOGIN,
                parameters={
                    name: pulumi.Output.secret(self.unseal.stdout.apply(_login_field(name)))
                    for name in ("role_id", "secret_id")
                },
            )
        self.address = args.host_address
        self.provider = vault.Provider(
            name,
            address=args.host_address,
            token=self.root_token,
            auth_login=auth_login,
            # The token is used as is: no child token is minted on every run (the provisioner
            # may not create tokens at all).
            skip_child_token=True,
            ca_cert_file=args.ca_file,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.unseal]),
        )
        self.kv = vault.Mount(
            f"{name}-kv",
            path=KV_PATH,
            type="kv",
            options={"version": "2"},
            description="Service credentials, one path per service",
            # Deleting the mount would delete every credential with it.
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, protect=True, retain_on_delete=True),
        )
        # Every login, read and policy change leaves a line here (request and response, secrets
        # HMAC'd by Vault). Going back below the operations features disables the device; its
        # log stays on its protected volume.
        self.audit = None
        if args.audit_file is not None:
            self.audit = vault.Audit(
                f"{name}-audit-device",
                type="file",
                path="file",
                description="Every request and response, on the dev-vault-audit volume",
                options={"file_path": args.audit_file},
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )
        self.register_outputs(
            {"address": self.address, "kvPath": self.kv.path, "caFile": args.ca_file, "auditFile": args.audit_file}
        )

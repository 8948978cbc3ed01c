"""The top-level component: the whole platform for one Settings object."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_vault as vault

from components.accounts import AccountSetup, AccountSetupArgs, docker_exec, users_file
from components.identity import SECRET_ID_TTL, ServiceIdentity, ServiceIdentityArgs
from components.network import NetworkTopology, NetworkTopologyArgs
from components.pki import CertificateAuthority, CertificateAuthorityArgs, ServiceCertificate, ServiceCertificateArgs
from components.redis_cluster import RedisCluster, RedisClusterArgs
from components.secrets import Derived, ServiceSecret, ServiceSecretArgs, generate_password
from components.service import ServiceContainer, ServiceContainerArgs, Upload
from components.vault_server import VaultServer, VaultServerArgs
from components.volumes import DataVolumes, DataVolumesArgs
from devstack import clock
from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.certificates import RENEWAL_PERIOD_DAYS, leaf_spec, tls_services
from devstack.credentials import (
    MANAGEMENT,
    ClientAccount,
    accounts_of,
    accounts_on,
    client_accounts,
    management_accounts,
    management_keys,
    needs_secret,
    secret_keys,
)
from devstack.delivery import ROLE_ID_PATH, SECRET_ID_PATH, TOKEN_PATH, delivery, render
from devstack.hardening import container_hardening
from devstack.model import APP_DIR, SECRETS_DIR, TEMPLATE_DIR, USERS_FILE_KEY, AccountServer, ConfigContext, Service
from devstack.monitoring import APPROLE_RULES, CERTIFICATE_RULES, RULES_DIR, approle_rules, certificate_rules
from devstack.phases import TlsMode
from devstack.services import vault as vault_service
from devstack.services.vault import VAULT
from devstack.settings import Settings
from devstack.tls import CA_FILE, CERT_FILE, KEY_FILE, TLS_DIR, server_tls
from devstack.topology import (
    attachments,
    host_cidrs,
    networks,
    published_ports,
    selected_services,
    start_dependencies,
)

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "apps"
SYSTEM_CA_BUNDLE = "/etc/ssl/cert.pem"  # Alpine's, the only trust its busybox wget has


def _users_file(
    serves: AccountServer,
    accounts: tuple[ClientAccount, ...],
    clients: Mapping[str, ServiceSecret],
    values: Mapping[str, pulumi.Output[str]],
) -> pulumi.Output[str]:
    """A server's users file from its own secret's values (its admin_key's) and its clients'."""
    assert serves.users_file is not None
    return users_file(serves.users_file, values[serves.admin_key], accounts, clients)


def _start_order(selected: tuple[Service, ...], accounts: tuple[ClientAccount, ...]) -> list[Service]:
    """Dependencies, and the servers a service has accounts on, before the service itself."""
    names = {s.name for s in selected}
    done: dict[str, Service] = {}

    def before(service: Service) -> list[str]:
        servers = [server for a in accounts_of(service, accounts) for server in a.servers if server in names]
        return [*start_dependencies(selected, service), *servers]

    def visit(service: Service, path: tuple[str, ...] = ()) -> None:
        if service.name in done:
            return
        if service.name in path:
            raise ValueError(f"start-order cycle: {' -> '.join((*path, service.name))}")
        for name in before(service):
            visit(SERVICES_BY_NAME[name], (*path, service.name))
        done[service.name] = service

    for service in selected:
        visit(service)
    return list(done.values())


class Platform(pulumi.ComponentResource):
    services: dict[str, ServiceContainer]

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:platform:Platform", name, None, opts)
        self.settings = settings
        self.labels = {"devstack.project": settings.project, "devstack.stack": settings.stack}
        child = pulumi.ResourceOptions(parent=self)

        self.topology = NetworkTopology("networks", NetworkTopologyArgs(networks(settings), self.labels), opts=child)
        volume_names = tuple(dict.fromkeys(m.volume for s in SERVICES for m in s.volumes))
        self.data = DataVolumes("volumes", DataVolumesArgs(volume_names, self.labels), opts=child)

        selected = selected_services(settings)
        # Vault's own listener needs its certificate, so the chain comes first.
        self.certificates = self._certificates(selected) if settings.features.tls is not TlsMode.OFF else {}
        self.vault = self._vault_server()
        # Credentials are data: every catalog service has its secret whatever the profile, so a
        # service that leaves a profile and comes back finds the passwords its volume holds.
        self.accounts = client_accounts(SERVICES)
        # The management's backup and restore passwords are data too (its secret exists in every
        # phase); the servers hold those accounts from the backups feature on.
        self.management_accounts = management_accounts(SERVICES)
        if settings.features.backups:
            self.accounts += self.management_accounts
        self.secrets = self._service_secrets()
        self.identities = self._identities(selected) if settings.features.approle else {}

        self.services = {}
        self.account_setups: dict[str, AccountSetup] = {}
        self.post_start: dict[str, command.local.Command] = {}
        for service in _start_order(selected, self.accounts):
            if service is VAULT:
                continue
            self.services[service.name] = self._service(service, selected)
            self._after_start(service)

        cluster_nodes = [s for s in selected if s.cluster is not None]
        self.redis_cluster = None
        if len(cluster_nodes) > 1:
            self.redis_cluster = RedisCluster(
                "redis-cluster",
                RedisClusterArgs(
                    nodes=tuple(s.container_name for s in cluster_nodes),
                    addresses=tuple(f"{settings.static_ip(s)}:{self._cluster_port(s)}" for s in cluster_nodes),
                    tls_ca=f"{TLS_DIR}/{CA_FILE}" if settings.features.tls is TlsMode.REQUIRED else None,
                    password=self.secrets[cluster_nodes[0].name].value("password"),
                    node_resources=tuple(self.services[s.name].container for s in cluster_nodes),
                    replicas=1 if settings.redis_replicas else 0,
                ),
                opts=child,
            )

        self.endpoints = {
            service.name: {
                "container": service.container_name,
                "address": settings.static_ip(service),
                "ports": {p.name: f"{p.bind_address}:{p.host}" for p in published_ports(settings, service)},
            }
            for service in selected
        }
        self.register_outputs(
            {"endpoints": self.endpoints, "networks": self.topology.names, "vaultAddress": self.vault.address}
        )

    def _vault_server(self) -> VaultServer:
        settings = self.settings
        mode = self._tls_mode(VAULT)
        tls = server_tls(VAULT, mode)
        # Hardened, Vault runs as its own user with no capability: it cannot lock its memory.
        config = vault_service.vault_hcl(VAULT, mode, mlock=not settings.features.hardening)
        uploads = (Upload(vault_service.CONFIG_PATH, config), *self._tls_uploads(VAULT))
        extra: dict[str, object] = {"healthcheck": tls.healthcheck} if tls.healthcheck else {}
        ca_pem = self.authority.root_pem if self.certificates else None
        return VaultServer(
            "vault",
            VaultServerArgs(
                # Vault is healthy only once unsealed: the bootstrap, not the engine, waits.
                container=self._container_args(
                    VAULT, command=("server",), uploads=uploads, wait_healthy=False, **extra
                ),
                host_address=settings.vault_host_address,
                init_file=settings.vault_init_file,
                run_id=clock.now().isoformat(),
                container_port=VAULT.port(vault_service.host_port_name(settings.features.tls)).container,
                # An audit trail from the operations features on (backups, DR, alerting).
                audit_file=vault_service.AUDIT_FILE if settings.features.backups else None,
                provisioner_file=settings.vault_provisioner_file if settings.features.strict else None,
                # the provisioner logs in from where management does (this machine)
                provisioner_cidrs=host_cidrs(settings, VAULT),
                ca_file=settings.vault_ca_file,
                ca_pem=ca_pem,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _cluster_port(self, service: Service) -> int:
        """Where the cluster reaches a node: its TLS port once plaintext is refused."""
        if service.cluster is None:
            raise ValueError(f"{service.name} is not a cluster node")
        required = self.settings.features.tls is TlsMode.REQUIRED
        return service.port(service.cluster.tls_port if required else service.cluster.plain_port).container

    def _container_args(self, service: Service, **extra: object) -> ServiceContainerArgs:
        settings = self.settings
        labels = {**self.labels, "devstack.service": service.name, "devstack.tier": service.tier.value}
        uploads = bool(extra.get("uploads"))
        return ServiceContainerArgs(
            service=service,
            image=settings.image(service),
            attachments=attachments(settings, service),
            networks=self.topology.networks,
            published=published_ports(settings, service),
            volumes=self.data.volumes,
            labels=labels,
            memory=settings.memory[service.name],
            hardening=container_hardening(service, settings.features.hardening, uploads),
            **extra,  # type: ignore[arg-type]
        )

    def _service_secrets(self) -> dict[str, ServiceSecret]:
        secrets: dict[str, ServiceSecret] = {}
        keys = management_keys(self.management_accounts)
        if keys:  # before the servers: a users file is computed from the passwords
            users = {a.user_key: a.user for a in self.management_accounts}
            secrets[MANAGEMENT] = ServiceSecret(
                MANAGEMENT,
                ServiceSecretArgs(MANAGEMENT, keys, users, mount=self.vault.kv.path, provider=self.vault.provider),
                opts=pulumi.ResourceOptions(parent=self),
            )
        cluster_passwords: dict[str, pulumi.Output[str]] = {}
        # Clients first: a server's users file is computed from its clients' passwords.
        ordered = sorted(SERVICES, key=lambda s: s.serves is not None and s.serves.users_file is not None)
        for service in ordered:
            if not needs_secret(service, self.accounts) or service.credentials is None:
                continue
            credentials = service.credentials
            shared = {}
            if credentials.shared_with:
                if credentials.shared_with not in cluster_passwords:
                    cluster_passwords[credentials.shared_with] = generate_password(
                        f"{credentials.shared_with}-password", self
                    )
                shared["password"] = cluster_passwords[credentials.shared_with]
            derived: dict[str, Derived] = {}
            if service.serves is not None and service.serves.users_file is not None:
                on_server = accounts_on(service, self.accounts)
                derived[USERS_FILE_KEY] = functools.partial(_users_file, service.serves, on_server, secrets)
            fixed = {f.key: f.fixed for f in credentials.fields if f.fixed is not None}
            fixed |= {a.user_key: a.user for a in accounts_of(service, self.accounts)}
            secrets[service.name] = ServiceSecret(
                service.name,
                ServiceSecretArgs(
                    service=service.name,
                    keys=secret_keys(service, self.accounts),
                    fixed=fixed,
                    shared=shared,
                    derived=derived,
                    mount=self.vault.kv.path,
                    provider=self.vault.provider,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        return secrets

    def _certificates(self, selected: tuple[Service, ...]) -> dict[str, ServiceCertificate]:
        self.authority = CertificateAuthority(
            "ca", CertificateAuthorityArgs(self.settings.stack), opts=pulumi.ResourceOptions(parent=self)
        )
        renewal = clock.period(RENEWAL_PERIOD_DAYS)
        return {
            service.name: ServiceCertificate(
                service.name,
                ServiceCertificateArgs(leaf_spec(self.settings, service), self.authority, renewal),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for service in tls_services(selected)
        }

    def _generated_rules(self) -> list[Upload]:
        """The recording rules the scraper's certificate and AppRole alerts read."""
        rules = [self._certificate_rules()] if self.certificates else []
        return rules + ([self._approle_rules()] if self.identities else [])

    def _certificate_rules(self) -> Upload:
        """Each certificate's not-after, for the scraper's certificate alerts (devstack.monitoring)."""
        ends = {name: c.certificate.validity_end_time for name, c in self.certificates.items()}
        content = pulumi.Output.all(**ends).apply(certificate_rules)
        return Upload(f"{RULES_DIR}/{CERTIFICATE_RULES}", content)

    def _approle_rules(self) -> Upload:
        """When the secret_ids can expire at the earliest: the rotation period's start + their TTL."""
        days = self.settings.secret_id_rotation_days
        start = clock.period(days) * days * clock.DAY_SECONDS
        return Upload(f"{RULES_DIR}/{APPROLE_RULES}", approle_rules(tuple(self.identities), start + SECRET_ID_TTL))

    def _tls_mode(self, service: Service) -> TlsMode:
        """The TLS mode a server runs in: the feature's, once it has a certificate."""
        return self.settings.features.tls if service.name in self.certificates else TlsMode.OFF

    def _tls_uploads(self, service: Service) -> list[Upload]:
        if not self.certificates:
            return []
        certificate = self.certificates.get(service.name)
        if certificate is None:
            # A client only: it gets the CA to verify the servers it talks to (none: nothing).
            return [Upload(f"{TLS_DIR}/{CA_FILE}", self.authority.root_pem)] if service.flows else []
        if service.tls is None:
            raise ValueError(f"{service.name} has a certificate but no TLS support")
        owner = self._server_uid(service, service.tls.owner)
        # The server sends its certificate and the intermediate; clients trust the root.
        chain = pulumi.Output.concat(certificate.cert_pem, self.authority.intermediate.cert_pem)
        uploads = [
            Upload(f"{TLS_DIR}/{CERT_FILE}", chain),
            Upload(f"{TLS_DIR}/{KEY_FILE}", certificate.key_pem, permissions="0600", owner=owner),
            Upload(f"{TLS_DIR}/{CA_FILE}", self.authority.root_pem),
        ]
        if service.tls.combined_pem is not None:
            combined = pulumi.Output.secret(pulumi.Output.concat(chain, certificate.key_pem))
            path = f"{TLS_DIR}/{service.tls.combined_pem}"
            uploads.append(Upload(path, combined, permissions="0600", owner=owner))
        return uploads

    def _server_uid(self, service: Service, image_uid: int) -> int:
        """The uid the service's server reads its files as: the hardened user's, when it has one."""
        hardening = container_hardening(service, self.settings.features.hardening, uploads=True)
        return image_uid if hardening.uid is None else hardening.uid

    def _identities(self, selected: tuple[Service, ...]) -> dict[str, ServiceIdentity]:
        """Phase 1: one AppRole per running container with a secret, bound to its static
        address, plus `management` for host tooling, bound to the addresses Vault sees this
        machine's connections come from (its networks' gateways, which no container holds).
        A service outside the profiles has no identity: nothing could log in with it."""
        settings = self.settings
        backend = vault.AuthBackend(
            "approle",
            type="approle",
            path="approle",
            description="One role per container identity",
            opts=pulumi.ResourceOptions(parent=self, provider=self.vault.provider),
        )
        days = settings.secret_id_rotation_days
        rotation = f"{days}d-{clock.period(days)}"
        identities = {}
        running = {s.name for s in selected}
        for name in [*(n for n in self.secrets if n in running), MANAGEMENT]:
            service = SERVICES_BY_NAME.get(name)
            cidrs = (f"{settings.static_ip(service)}/32",) if service else host_cidrs(settings, VAULT)
            identities[name] = ServiceIdentity(
                name,
                ServiceIdentityArgs(
                    identity=name,
                    bound_cidrs=cidrs,
                    backend=backend.path,
                    provider=self.vault.provider,
                    rotation=rotation,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        return identities

    def _service(self, service: Service, selected: tuple[Service, ...]) -> ServiceContainer:
        tls = server_tls(service, self._tls_mode(service))
        vault_tls = self._tls_mode(VAULT)  # how this container reaches Vault
        depends: list[pulumi.Resource] = []
        for dependency in start_dependencies(selected, service):
            depends.append(self.vault.unseal if dependency == VAULT.name else self.services[dependency].container)
        for account in accounts_of(service, self.accounts):
            depends += [self.account_setups[s] for s in account.servers if s in self.account_setups]
        extra: dict[str, object] = {}
        uploads: list[Upload] = []
        if service.name in self.secrets and service.credentials and service.credentials.uploaded_because:
            credentials = service.credentials
            extra |= {"entrypoint": credentials.entrypoint, "command": self._tuning_args(service) + tls.args}
            extra["env"] = dict(credentials.env)
            uploads += self._uploaded_secret(service, tls.files)
            depends.append(self.secrets[service.name].secret)
        elif service.name in self.secrets:
            secret = self.secrets[service.name]
            identity = self.identities.get(service.name)
            strict = self.settings.features.strict
            run_as = self._server_uid(service, service.credentials.run_as_uid) if service.credentials else None
            plan = delivery(service, approle=identity is not None, tls=vault_tls, strict=strict, run_as_uid=run_as)
            command = plan.command + self._tuning_args(service) + tls.args
            extra |= {"entrypoint": plan.entrypoint, "command": command, "tmpfs": plan.tmpfs, "env": plan.env}
            uploads += [Upload(f.path, f.content) for f in plan.files]
            owner = plan.file_owner
            if identity is not None:
                # Its own AppRole, as files only the service's user reads; no token anywhere.
                uploads.append(Upload(ROLE_ID_PATH, identity.role_id, permissions="0400", owner=owner))
                uploads.append(Upload(SECRET_ID_PATH, identity.secret_id, permissions="0400", owner=owner))
                depends.append(identity)
            else:
                # Phase 0 posture on purpose: the root token, as a file only the service's user reads.
                # (None only at strict, which needs approle: settings refuse anything else.)
                token = self.vault.root_token
                assert token is not None, "a root token is retired only at strict, which needs approle"
                uploads.append(Upload(TOKEN_PATH, token, permissions="0400", owner=owner))
            depends.append(secret.secret)
        elif self._tuning_args(service):
            extra["command"] = service.command + self._tuning_args(service)
        uploads += self._config_uploads(service, selected)
        uploads += [Upload(path, content) for path, content in tls.files.items()]
        uploads += self._tls_uploads(service)
        if service.scrapes_metrics and self.settings.features.alerting:
            uploads += self._generated_rules()
        uploads += self._app_and_bundle(service, vault_tls)
        if tls.command is not None:
            extra["command"] = tls.command
        if tls.healthcheck is not None:
            extra["healthcheck"] = tls.healthcheck
        if tls.env:
            extra["env"] = {**extra.get("env", {}), **tls.env}  # type: ignore[dict-item]
        return ServiceContainer(
            service.name,
            # One file per path: a mode's own version of a file (TLS) replaces the default one.
            self._container_args(
                service, uploads=tuple({u.path: u for u in uploads}.values()), depends_on=tuple(depends), **extra
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _app_and_bundle(self, service: Service, vault_tls: TlsMode) -> list[Upload]:
        uploads = []
        if service.app:
            uploads.append(Upload(f"{APP_DIR}/{service.app}", (APPS / service.app).read_text()))
        if service.system_ca_bundle and vault_tls is not TlsMode.OFF:
            # Alpine's busybox wget verifies only against this bundle (see the catalog): from
            # dual mode on, when the wrapper reaches Vault over HTTPS.
            uploads.append(Upload(SYSTEM_CA_BUNDLE, self.authority.root_pem))
        return uploads

    def _uploaded_secret(self, service: Service, tls_files: Mapping[str, str]) -> list[Upload]:
        """The secret of an image that cannot verify Vault (Credentials.uploaded_because): each
        value, and each template filled in, as a Pulumi-secret file only the service's user
        reads, where the wrapper would have written them; no wrapper, no Vault login."""
        credentials = service.credentials
        assert credentials is not None
        owner = self._server_uid(service, credentials.run_as_uid)
        values = self.secrets[service.name].values
        uploads = [
            Upload(f"{SECRETS_DIR}/{key}", pulumi.Output.secret(value), permissions="0400", owner=owner)
            for key, value in values.items()
        ]
        for template in credentials.templates:
            text = tls_files.get(f"{TEMPLATE_DIR}/{template.name}", template.content)  # the TLS mode's own
            filled = pulumi.Output.all(**values).apply(
                lambda v, text=text, syntax=template.syntax: render(text, v, syntax)
            )
            uploads.append(Upload(template.dest, pulumi.Output.secret(filled), permissions="0400", owner=owner))
        return uploads

    def _config_uploads(self, service: Service, selected: tuple[Service, ...]) -> list[Upload]:
        """The service's own config files, for its TLS mode and its memory limit."""
        if service.config_files is None:
            return []
        memory = self.settings.memory_limit(service)
        context = ConfigContext(self.settings, selected, self._tls_mode(service), memory)
        return [Upload(f.path, f.content) for f in service.config_files(service, context)]

    def _tuning_args(self, service: Service) -> tuple[str, ...]:
        """Server settings derived from the container's own memory limit (the tuning feature)."""
        if not self.settings.features.tuning or service.tuning is None:
            return ()
        return service.tuning(service, self.settings.memory_limit(service)).args

    def _after_start(self, service: Service) -> None:
        """Steps once the container is healthy: its own setup step, and its clients' accounts."""
        container = self.services[service.name].container
        if service.post_start is not None:
            self.post_start[service.name] = command.local.Command(
                service.post_start.name,
                create=docker_exec(service.container_name, ("sh", "-s")),
                stdin=service.post_start.script.read_text(),
                logging=command.local.Logging.STDERR,
                triggers=[container.id],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
            )
        if service.serves is None or service.serves.setup is None:
            return  # no accounts, or they come with the server's own secret (a users file)
        self.account_setups[service.name] = AccountSetup(
            f"{service.name}-accounts",
            AccountSetupArgs(
                server=service,
                setup=service.serves.setup,
                accounts=accounts_on(service, self.accounts),
                admin=self.secrets[service.name],
                clients=self.secrets,
                container=container,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

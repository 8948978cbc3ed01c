"""The top-level component: the whole platform for one Settings object."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_vault as vault

from components.accounts import AccountSetup, AccountSetupArgs, redis_users_file
from components.identity import ServiceIdentity, ServiceIdentityArgs
from components.network import NetworkTopology, NetworkTopologyArgs
from components.pki import CertificateAuthority, CertificateAuthorityArgs, ServiceCertificate, ServiceCertificateArgs
from components.redis_cluster import RedisCluster, RedisClusterArgs
from components.secrets import ServiceSecret, ServiceSecretArgs, generate_password
from components.service import ServiceContainer, ServiceContainerArgs, Upload
from components.vault_server import VaultServer, VaultServerArgs
from components.volumes import DataVolumes, DataVolumesArgs
from devstack import clock
from devstack.catalog import SERVICES, SERVICES_BY_NAME
from devstack.configs import pgbouncer_ini, redis_conf, vault_hcl
from devstack.credentials import (
    USERS_ACL_KEY,
    ClientAccount,
    account_system,
    accounts_of,
    accounts_on,
    client_accounts,
    needs_secret,
    secret_keys,
)
from devstack.delivery import ROLE_ID_PATH, SECRET_ID_PATH, TOKEN_PATH, delivery
from devstack.model import APP_DIR, Service
from devstack.phases import TlsMode
from devstack.settings import Settings
from devstack.tls import (
    CA_FILE,
    CERT_FILE,
    COMBINED_PEM,
    KEY_FILE,
    RENEWAL_PERIOD_DAYS,
    TLS_DIR,
    TLS_OWNERS,
    leaf_spec,
    tls_services,
)
from devstack.tls_configs import pgbouncer_ini_lines, server_tls
from devstack.topology import attachments, networks, published_ports, selected_services, start_dependencies

VAULT = SERVICES_BY_NAME["vault"]
ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "apps"
FORGEJO_ADMIN = ROOT / "scripts" / "forgejo-admin.sh"
MANAGEMENT = "management"  # the read-only identity for backup tooling on this machine
SYSTEM_CA_BUNDLE = "/etc/ssl/cert.pem"  # Alpine's, the only trust its busybox wget has


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
        self.secrets = self._service_secrets()
        self.identities = self._identities() if settings.features.approle else {}

        self.services = {}
        self.account_setups: dict[str, AccountSetup] = {}
        for service in _start_order(selected, self.accounts):
            if service is VAULT:
                continue
            self.services[service.name] = self._service(service, selected)
            self._after_start(service)

        redis_nodes = [s for s in selected if account_system(s) == "redis"]
        self.redis_cluster = None
        if len(redis_nodes) > 1:
            self.redis_cluster = RedisCluster(
                "redis-cluster",
                RedisClusterArgs(
                    nodes=tuple(s.container_name for s in redis_nodes),
                    addresses=tuple(f"{settings.static_ip(s)}:{self._redis_client_port(s)}" for s in redis_nodes),
                    tls_ca=f"{TLS_DIR}/{CA_FILE}" if settings.features.tls is TlsMode.REQUIRED else None,
                    password=self.secrets[redis_nodes[0].name].value("password"),
                    node_resources=tuple(self.services[s.name].container for s in redis_nodes),
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
        uploads = (Upload("/vault/config/vault.hcl", vault_hcl(VAULT, mode)), *self._tls_uploads(VAULT))
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
                ca_file=settings.vault_ca_file,
                ca_pem=ca_pem,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _redis_client_port(self, service: Service) -> int:
        """Where a client reaches the node: the TLS port once plaintext is refused."""
        required = self.settings.features.tls is TlsMode.REQUIRED
        return service.port("tls" if required else "redis").container

    def _container_args(self, service: Service, **extra: object) -> ServiceContainerArgs:
        settings = self.settings
        labels = {**self.labels, "devstack.service": service.name, "devstack.tier": service.tier.value}
        return ServiceContainerArgs(
            service=service,
            image=settings.image(service),
            attachments=attachments(settings, service),
            networks=self.topology.networks,
            published=published_ports(settings, service),
            volumes=self.data.volumes,
            labels=labels,
            **extra,  # type: ignore[arg-type]
        )

    def _service_secrets(self) -> dict[str, ServiceSecret]:
        secrets: dict[str, ServiceSecret] = {}
        cluster_passwords: dict[str, pulumi.Output[str]] = {}
        # Clients first: a Redis node's users file is computed from its clients' passwords.
        ordered = sorted(SERVICES, key=lambda s: account_system(s) == "redis")
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
            derived = {}
            if account_system(service) == "redis":
                derived[USERS_ACL_KEY] = redis_users_file(
                    shared["password"], accounts_on(service, self.accounts), secrets
                )
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

    def _tls_mode(self, service: Service) -> TlsMode:
        """The TLS mode a server runs in: the feature's, once it has a certificate."""
        return self.settings.features.tls if service.name in self.certificates else TlsMode.OFF

    def _tls_uploads(self, service: Service) -> list[Upload]:
        if not self.certificates:
            return []
        certificate = self.certificates.get(service.name)
        if certificate is None:
            # A client only: it gets the CA to verify the servers it talks to.
            return [Upload(f"{TLS_DIR}/{CA_FILE}", self.authority.root_pem)]
        owner = TLS_OWNERS[service.name]
        # The server sends its certificate and the intermediate; clients trust the root.
        chain = pulumi.Output.concat(certificate.cert_pem, self.authority.intermediate.cert_pem)
        uploads = [
            Upload(f"{TLS_DIR}/{CERT_FILE}", chain),
            Upload(f"{TLS_DIR}/{KEY_FILE}", certificate.key_pem, permissions="0600", owner=owner),
            Upload(f"{TLS_DIR}/{CA_FILE}", self.authority.root_pem),
        ]
        if service.name in COMBINED_PEM:
            combined = pulumi.Output.secret(pulumi.Output.concat(chain, certificate.key_pem))
            path = f"{TLS_DIR}/{COMBINED_PEM[service.name]}"
            uploads.append(Upload(path, combined, permissions="0600", owner=owner))
        return uploads

    def _identities(self) -> dict[str, ServiceIdentity]:
        """Phase 1: one AppRole per container identity, bound to its static address, plus
        `management` for host tooling (no container, so no address to bind)."""
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
        for name in [*self.secrets, MANAGEMENT]:
            service = SERVICES_BY_NAME.get(name)
            cidrs = (f"{settings.static_ip(service)}/32",) if service else ()
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
        if service.name in self.secrets:
            secret = self.secrets[service.name]
            identity = self.identities.get(service.name)
            plan = delivery(service, approle=identity is not None, tls=vault_tls)
            command = plan.command + tls.args
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
                uploads.append(Upload(TOKEN_PATH, self.vault.root_token, permissions="0400", owner=owner))
            depends.append(secret.secret)
        uploads += [Upload(path, content) for path, content in self._config_files(service, selected)]
        uploads += [Upload(path, content) for path, content in tls.files.items()]
        uploads += self._tls_uploads(service)
        if service.app:
            uploads.append(Upload(f"{APP_DIR}/{service.app}", (APPS / service.app).read_text()))
        if service.system_ca_bundle and vault_tls is TlsMode.REQUIRED:
            # Alpine's busybox wget verifies only against this bundle (see the catalog).
            uploads.append(Upload(SYSTEM_CA_BUNDLE, self.authority.root_pem))
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

    def _config_files(self, service: Service, selected: tuple[Service, ...]) -> list[tuple[str, str]]:
        if account_system(service) == "redis":
            cluster = sum(1 for s in selected if account_system(s) == "redis") > 1
            return [("/devstack/redis.conf", redis_conf(self.settings, service, cluster))]
        if service.name == "pgbouncer":
            ini = pgbouncer_ini(service, SERVICES_BY_NAME["postgres"], pgbouncer_ini_lines(self._tls_mode(service)))
            return [("/etc/pgbouncer/pgbouncer.ini", ini)]
        return []

    def _after_start(self, service: Service) -> None:
        """Accounts on a data service, created as code once its container is healthy."""
        container = self.services[service.name].container
        if service.name == "forgejo":
            # First-run setup as code: the database is configured by env, the admin made here.
            self.forgejo_admin = command.local.Command(
                "forgejo-admin",
                create="docker exec -i dev-forgejo sh -s",
                stdin=FORGEJO_ADMIN.read_text(),
                logging=command.local.Logging.STDERR,
                triggers=[container.id],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
            )
        system = account_system(service)
        if system is None or system == "redis":
            return  # Redis users come with the node's config
        self.account_setups[service.name] = AccountSetup(
            f"{service.name}-accounts",
            AccountSetupArgs(
                server=service,
                system=system,
                accounts=accounts_on(service, self.accounts),
                admin=self.secrets[service.name],
                clients=self.secrets,
                container=container,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

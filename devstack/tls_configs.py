"""Each server's own TLS settings for a TLS mode: off (nothing), dual (TLS offered, plaintext still
accepted while clients migrate) and required (plaintext refused). TLS 1.2 at least, no weak
ciphers. Files are the ones devstack.tls puts under /devstack/tls."""

from __future__ import annotations

import dataclasses

from devstack.catalog import SERVICES_BY_NAME
from devstack.model import TEMPLATE_DIR, Healthcheck, Service
from devstack.phases import TlsMode
from devstack.services.apis import api_probe
from devstack.tls import CA_FILE, CERT_FILE, COMBINED_PEM, KEY_FILE, TLS_DIR
from devstack.tls_server import ServerTls
from devstack.tls_web import GO_CIPHER_SUITES, web_tls

# TLS 1.2 suites: forward-secret AEAD only (TLS 1.3 suites are strong by construction).
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!3DES:!RC4:!SHA1"
PG_HBA = "pg_hba.conf"

# Required mode: the container's own socket stays trusted (health checks and the account
# setup use it), and every network connection must be TLS with a password.
PG_HBA_REQUIRED = """# devstack, TLS required: no plaintext over the network.
local     all  all                  trust
hostssl   all  all  0.0.0.0/0       scram-sha-256
hostssl   all  all  ::/0            scram-sha-256
hostnossl all  all  0.0.0.0/0       reject
hostnossl all  all  ::/0            reject
"""


# The TLS 1.2 suites Vault may use: the Go ones of the other servers with AES-GCM (TLS 1.3 suites
# are not configurable in Go and all strong).
VAULT_CIPHER_SUITES = ",".join(s for s in GO_CIPHER_SUITES if "_GCM_" in s)


def _vault_listener(address: str, tls_dir: str | None) -> str:
    if tls_dir is None:
        tls = "  tls_disable = true"
    else:
        tls = "\n".join(
            [
                f'  tls_cert_file = "{tls_dir}/{CERT_FILE}"',
                f'  tls_key_file = "{tls_dir}/{KEY_FILE}"',
                '  tls_min_version = "tls12"',
                f'  tls_cipher_suites = "{VAULT_CIPHER_SUITES}"',
            ]
        )
    return f"""
listener "tcp" {{
  address = "{address}"
{tls}
  telemetry {{
    # Prometheus scrapes /v1/sys/metrics without holding a Vault token.
    unauthenticated_metrics_access = true
  }}
}}
"""


def vault_listeners(mode: TlsMode, api_port: int, https_port: int, tls_dir: str = TLS_DIR) -> str:
    """vault.hcl listener blocks: HTTP (off), HTTP plus HTTPS on its own port (dual), HTTPS
    alone on the API port (required)."""
    if mode is TlsMode.OFF:
        return _vault_listener(f"0.0.0.0:{api_port}", None)
    if mode is TlsMode.DUAL:
        return _vault_listener(f"0.0.0.0:{api_port}", None) + _vault_listener(f"0.0.0.0:{https_port}", tls_dir)
    return _vault_listener(f"0.0.0.0:{api_port}", tls_dir)


def vault_healthcheck(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> Healthcheck | None:
    """Once plaintext is gone, `vault status` checks the certificate against the CA (exit 0 only
    when unsealed, as the HTTP probe before it)."""
    if mode is not TlsMode.REQUIRED:
        return None
    port = service.port("api").container
    probe = f"VAULT_ADDR=https://localhost:{port} VAULT_CACERT={tls_dir}/{CA_FILE} vault status >/dev/null"
    return dataclasses.replace(service.healthcheck, test=("CMD-SHELL", probe))


def postgres_args(mode: TlsMode, tls_dir: str = TLS_DIR) -> tuple[str, ...]:
    """`postgres` server arguments (appended to the image's command)."""
    if mode is TlsMode.OFF:
        return ()
    settings = {
        "ssl": "on",
        "ssl_cert_file": f"{tls_dir}/{CERT_FILE}",
        "ssl_key_file": f"{tls_dir}/{KEY_FILE}",
        "ssl_ca_file": f"{tls_dir}/{CA_FILE}",
        "ssl_min_protocol_version": "TLSv1.2",
        "ssl_ciphers": CIPHERS,
        "ssl_prefer_server_ciphers": "on",
    }
    if mode is TlsMode.REQUIRED:
        settings["hba_file"] = f"{tls_dir}/{PG_HBA}"
    return tuple(arg for key, value in settings.items() for arg in ("-c", f"{key}={value}"))


def postgres_files(mode: TlsMode, tls_dir: str = TLS_DIR) -> dict[str, str]:
    return {f"{tls_dir}/{PG_HBA}": PG_HBA_REQUIRED} if mode is TlsMode.REQUIRED else {}


def redis_lines(mode: TlsMode, plain_port: int, tls_port: int, tls_dir: str = TLS_DIR) -> list[str]:
    """redis.conf lines. Required: the plaintext port closes and the cluster bus is TLS too."""
    if mode is TlsMode.OFF:
        return []
    lines = [
        f"tls-port {tls_port}",
        f"tls-cert-file {tls_dir}/{CERT_FILE}",
        f"tls-key-file {tls_dir}/{KEY_FILE}",
        f"tls-ca-cert-file {tls_dir}/{CA_FILE}",
        "tls-auth-clients no",  # clients prove themselves with their ACL password
        'tls-protocols "TLSv1.2 TLSv1.3"',
        f"tls-ciphers {CIPHERS}",
        "tls-prefer-server-ciphers yes",
    ]
    if mode is TlsMode.REQUIRED:
        lines += ["port 0", "tls-cluster yes", "tls-replication yes"]
    else:
        lines += [f"port {plain_port}"]
    return lines


def redis_healthcheck(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> Healthcheck:
    """Once plaintext is refused the health probe speaks TLS too (a NOAUTH still proves life)."""
    base = service.healthcheck
    if mode is not TlsMode.REQUIRED:
        return base
    port = service.port("tls").container
    probe = f"redis-cli --tls --cacert {tls_dir}/{CA_FILE} --sni localhost -p {port} ping | grep -Eq 'PONG|NOAUTH'"
    return dataclasses.replace(base, test=("CMD-SHELL", probe))


# Once TLS is required these backends' plaintext ports are closed: clients use the TLS ones.
TLS_CLIENT_PORTS = {
    "REDIS_PORT": str(SERVICES_BY_NAME["redis-1"].port("tls").container),
    "RABBITMQ_PORT": str(SERVICES_BY_NAME["rabbitmq"].port("amqps").container),
}


def api_env(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> dict[str, str]:
    """The reference APIs serve HTTPS on 8443 beside HTTP (dual), or alone (required); as clients
    they are told the CA to verify their backends with, and the TLS ports once required."""
    env = {"TLS_MODE": mode.value, "TLS_CERT_FILE": f"{tls_dir}/{CERT_FILE}", "TLS_KEY_FILE": f"{tls_dir}/{KEY_FILE}"}
    if "REDIS_PORT" in service.env:
        env["TLS_CA_FILE"] = f"{tls_dir}/{CA_FILE}"
        if mode is TlsMode.REQUIRED:
            env |= TLS_CLIENT_PORTS
    return env


def redis_exporter_client(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """The exporter's own Redis node: over TLS, verified against the CA, once plaintext is gone.
    Its password file is keyed by that address, so it changes with it."""
    if mode is not TlsMode.REQUIRED or service.credentials is None:
        return ServerTls()
    (template,) = service.credentials.templates
    plain = service.env["REDIS_ADDR"]
    (node,) = [SERVICES_BY_NAME[f.to] for f in service.flows if f.port == "redis"]
    address = f"rediss://{node.name}:{node.port('tls').container}"
    env = {"REDIS_ADDR": address, "REDIS_EXPORTER_TLS_CA_CERT_FILE": f"{tls_dir}/{CA_FILE}"}
    files = {f"{TEMPLATE_DIR}/{template.name}": template.content.replace(plain, address)}
    return ServerTls(env=env, files=files)


def api_healthcheck(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> Healthcheck | None:
    if mode is not TlsMode.REQUIRED:
        return None
    url = f"https://localhost:{service.port('https').container}/health"
    return dataclasses.replace(service.healthcheck, test=api_probe(service.image, url, f"{tls_dir}/{CA_FILE}"))


RABBITMQ_TLS_CONF = "/etc/rabbitmq/conf.d/30-devstack-tls.conf"

# RabbitMQ (Erlang's ssl) takes suite names one by one, not an OpenSSL cipher string: CIPHERS
# spelled out, after the TLS 1.3 suites (a list that overrides the defaults must name those too, or
# TLS 1.3 has none). In this order of preference, which honor_cipher_order makes the server's.
RABBITMQ_CIPHERS = (
    "TLS_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
)


# RabbitMQ's HTTP listeners, by plugin: the catalog's port for it, which speaks HTTPS itself once
# TLS is required, and the one for HTTPS beside plain HTTP while clients migrate.
RABBITMQ_WEB_LISTENERS = {"management": ("management", "management-tls"), "prometheus": ("metrics", "metrics-tls")}


def rabbitmq_conf(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> str:
    """AMQPS; the management UI and the Prometheus endpoint over HTTPS (beside HTTP, or on their
    own ports once TLS is required); required mode closes every plaintext listener."""
    files = {
        "cacertfile": f"{tls_dir}/{CA_FILE}",
        "certfile": f"{tls_dir}/{CERT_FILE}",
        "keyfile": f"{tls_dir}/{KEY_FILE}",
    }
    lines = ["# devstack: TLS " + mode.value, f"listeners.ssl.default = {service.port('amqps').container}"]
    for prefix in ("ssl_options", *(f"{plugin}.ssl" for plugin in RABBITMQ_WEB_LISTENERS)):
        lines += [f"{prefix}.{key} = {path}" for key, path in files.items()]
        lines += [f"{prefix}.versions.1 = tlsv1.3", f"{prefix}.versions.2 = tlsv1.2"]
        lines += [f"{prefix}.ciphers.{n} = {suite}" for n, suite in enumerate(RABBITMQ_CIPHERS, start=1)]
        lines += [f"{prefix}.honor_cipher_order = true", f"{prefix}.honor_ecc_order = true"]
    lines += ["ssl_options.verify = verify_peer", "ssl_options.fail_if_no_peer_cert = false"]
    if mode is TlsMode.REQUIRED:
        lines.append("listeners.tcp = none")
    for plugin, (main, beside) in RABBITMQ_WEB_LISTENERS.items():
        port = service.port(main).container
        if mode is TlsMode.REQUIRED:
            lines.append(f"{plugin}.ssl.port = {port}")
        else:
            # Each plugin starts only the listeners named once any is: HTTP must be named too.
            lines += [f"{plugin}.tcp.port = {port}", f"{plugin}.ssl.port = {service.port(beside).container}"]
    return "\n".join(lines) + "\n"


def mongodb_args(mode: TlsMode, tls_dir: str = TLS_DIR) -> tuple[str, ...]:
    if mode is TlsMode.OFF:
        return ()
    return (
        "--tlsMode",
        "requireTLS" if mode is TlsMode.REQUIRED else "preferTLS",
        "--tlsCertificateKeyFile",
        f"{tls_dir}/{COMBINED_PEM['mongodb']}",
        "--tlsCAFile",
        f"{tls_dir}/{CA_FILE}",
        "--tlsAllowConnectionsWithoutCertificates",  # clients prove themselves with SCRAM
        "--tlsDisabledProtocols",
        "TLS1_0,TLS1_1",
        "--setParameter",
        f"opensslCipherConfig={CIPHERS}",  # TLS 1.2 suites; TLS 1.3's are all AEAD
    )


def mongodb_healthcheck(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> Healthcheck | None:
    if mode is not TlsMode.REQUIRED:
        return None
    probe = ("CMD", "mongosh", "--quiet", "--tls", "--tlsCAFile", f"{tls_dir}/{CA_FILE}", "--host", "localhost")
    return dataclasses.replace(service.healthcheck, test=(*probe, "--eval", "db.adminCommand('ping').ok"))


def _merged(server: ServerTls, client: ServerTls) -> ServerTls:
    """A server's own TLS settings with its settings as a client of another server."""
    return dataclasses.replace(
        server,
        env={**server.env, **client.env},
        files={**server.files, **client.files},
        args=server.args + client.args,
    )


def server_tls(service: Service, mode: TlsMode) -> ServerTls:
    """One place that knows each server's TLS switches (Redis's and PgBouncer's are in their
    config files: devstack.configs; the single-listener web servers' in devstack.tls_web)."""
    web = web_tls(service, mode)  # Forgejo states its keys in every mode, off included
    if web is not None:
        if service.name.startswith("redis-exporter-"):
            return _merged(web, redis_exporter_client(service, mode))
        return web
    if mode is TlsMode.OFF:
        return ServerTls()
    if service.name == "vault":
        return ServerTls(healthcheck=vault_healthcheck(service, mode))
    if service.name == "postgres":
        return ServerTls(args=postgres_args(mode), files=postgres_files(mode))
    if service.name == "mysql":
        return ServerTls(args=mysql_args(mode))
    if service.name == "rabbitmq":
        return ServerTls(files={RABBITMQ_TLS_CONF: rabbitmq_conf(service, mode)})
    if service.app is not None:
        return ServerTls(env=api_env(service, mode), healthcheck=api_healthcheck(service, mode))
    if service.name == "mongodb":
        return ServerTls(args=mongodb_args(mode), healthcheck=mongodb_healthcheck(service, mode))
    if service.name.startswith("redis-") and "tls" in {p.name for p in service.ports}:
        return ServerTls(healthcheck=redis_healthcheck(service, mode))
    return ServerTls()


def mysql_args(mode: TlsMode, tls_dir: str = TLS_DIR) -> tuple[str, ...]:
    """`mysqld` options (appended to the image's command) for MySQL 8.0 that MariaDB 10.11 takes
    too. The TLS 1.3 suites stay the library's (all AEAD); `--ssl-cipher` limits TLS 1.2."""
    if mode is TlsMode.OFF:
        return ()
    args = (
        f"--ssl-cert={tls_dir}/{CERT_FILE}",
        f"--ssl-key={tls_dir}/{KEY_FILE}",
        f"--ssl-ca={tls_dir}/{CA_FILE}",
        "--tls-version=TLSv1.2,TLSv1.3",
        f"--ssl-cipher={CIPHERS}",
    )
    if mode is TlsMode.REQUIRED:
        args += ("--require-secure-transport=ON",)  # TCP without TLS refused; the socket stays open
    return args


def pgbouncer_ini_lines(mode: TlsMode, tls_dir: str = TLS_DIR) -> list[str]:
    """pgbouncer.ini lines for the `[pgbouncer]` section: TLS towards its clients and towards
    PostgreSQL. Required: clients must use TLS, and PostgreSQL's certificate is verified against
    the CA and the host name of the `[databases]` entries."""
    if mode is TlsMode.OFF:
        return []
    required = mode is TlsMode.REQUIRED
    return [
        f"client_tls_sslmode = {'require' if required else 'allow'}",
        f"client_tls_cert_file = {tls_dir}/{CERT_FILE}",
        f"client_tls_key_file = {tls_dir}/{KEY_FILE}",
        f"client_tls_ca_file = {tls_dir}/{CA_FILE}",
        "client_tls_protocols = tlsv1.2,tlsv1.3",
        f"client_tls_ciphers = {CIPHERS}",
        f"server_tls_sslmode = {'verify-full' if required else 'prefer'}",
        f"server_tls_ca_file = {tls_dir}/{CA_FILE}",
        "server_tls_protocols = tlsv1.2,tlsv1.3",
        f"server_tls_ciphers = {CIPHERS}",
    ]

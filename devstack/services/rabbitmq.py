"""RabbitMQ: the catalog entry, its TLS listeners per mode (AMQPS, the management UI and the
Prometheus endpoint), and its clients' accounts with the rabbitmqctl script that creates them."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from devstack.accounts import Account, AccountKind, check_unique, login_account, sh_quote, validate_name
from devstack.backups import NO_PASSWORD
from devstack.model import (
    MIGRATION_PORT,
    PLAIN_BESIDE_TLS,
    SECRETS_DIR,
    STD_UP,
    TLS_PORT,
    AccountServer,
    Backup,
    ConfigContext,
    ConfigFile,
    Credentials,
    Hardening,
    Healthcheck,
    Limits,
    Metrics,
    Part,
    Port,
    SecretField,
    ServerTls,
    Service,
    SetupScript,
    Template,
    Tier,
    TlsSupport,
    Tuning,
    ValueSyntax,
    VolumeMount,
)
from devstack.phases import TlsMode
from devstack.services.vault import VAULT_FLOW
from devstack.tls import CA_FILE, CERT_FILE, KEY_FILE, TLS_DIR

VHOST = "dev_vhost"  # the clients' accounts share it

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


def _tls(service: Service, mode: TlsMode) -> ServerTls:
    if mode is TlsMode.OFF:
        return ServerTls()
    return ServerTls(files={RABBITMQ_TLS_CONF: rabbitmq_conf(service, mode)})


def _heredoc(password: str) -> tuple[str, str]:
    delimiter = "DEVSTACK_PASSWORD_END"
    while delimiter == password:
        delimiter += "_"
    return f"<<'{delimiter}'", f"{password}\n{delimiter}"


def rabbitmq_setup_sh(accounts: Sequence[Account], vhost: str = "/") -> str:
    """A POSIX sh script (run in the RabbitMQ container) that sets up every account on `vhost`.

    Passwords reach rabbitmqctl through here-documents on its stdin (add_user/change_password
    read the password from stdin when it is omitted), never through argv. APP: no tags,
    configure/write/read on resources named `<name>.*` or `<name>:*` and server-named queues
    (amq.gen-*), plus publishing through the default exchange. MONITOR: the `monitoring` tag and
    no resource permission. rabbitmqctl trims the password it reads, so leading or trailing
    whitespace and line breaks are rejected.
    """
    check_unique(accounts)
    if vhost != "/":
        validate_name(vhost, "RabbitMQ vhost")
    for account in accounts:
        password = account.password
        if password != password.strip() or "\n" in password or "\r" in password:
            raise ValueError(f"RabbitMQ: the password of {account.name!r} has surrounding whitespace or a line break")
    if any(a.database is not None for a in accounts):
        raise ValueError("RabbitMQ: accounts have no database (they share the vhost)")

    out = [
        "#!/bin/sh",
        "# devstack: RabbitMQ accounts (generated; idempotent, safe to re-run)",
        "set -eu",
        f"vhost={sh_quote(vhost)}",
        "# The script itself may be this shell's stdin (`sh -s`): a command that does not get a",
        "# here-document reads /dev/null, so it cannot swallow the rest of the script.",
        'if ! rabbitmqctl --silent list_vhosts name </dev/null | grep -Fqx -- "$vhost"; then',
        '    rabbitmqctl --silent add_vhost "$vhost" </dev/null',
        "fi",
        "listing=$(rabbitmqctl --silent list_users </dev/null)",
        "user_tags() {  # status 1 if the user does not exist",
        """    printf '%s\\n' "$listing" | awk -F '\\t' -v u="$1" '$1 == u {print $2; f = 1} END {exit !f}'""",
        "}",
    ]
    names = " ".join(sh_quote(a.name) for a in accounts)
    if accounts:
        out += [
            "# a client account never takes over an administrator (such as the admin's own login)",
            f"for name in {names}; do",
            '    if user_tags "$name" | grep -q administrator; then',
            '        echo "devstack: refusing to change administrator $name" >&2',
            "        exit 1",
            "    fi",
            "done",
        ]
    for account in accounts:
        name = sh_quote(account.name)
        redirect, body = _heredoc(account.password)
        out += [
            "",
            f"# {account.kind} account {account.name}",
            f"if user_tags {name} >/dev/null; then",
            f"    rabbitmqctl --silent change_password {name} {redirect}",
            body,
            "else",
            f"    rabbitmqctl --silent add_user {name} {redirect}",
            body,
            "fi",
        ]
        if account.kind is AccountKind.MONITOR:
            out += [
                f"rabbitmqctl --silent set_user_tags {name} monitoring </dev/null",
                f"rabbitmqctl --silent set_permissions -p \"$vhost\" {name} '^$' '^$' '^$' </dev/null",
            ]
        else:
            # names are [a-z0-9_-]: no regex metacharacter to escape
            own = f"^({account.name}[.:].*|amq\\.gen-.*)$"
            write = f"^({account.name}[.:].*|amq\\.gen-.*|amq\\.default)$"
            out += [
                f"rabbitmqctl --silent set_user_tags {name} </dev/null",
                f'rabbitmqctl --silent set_permissions -p "$vhost" {name}'
                f" {sh_quote(own)} {sh_quote(write)} {sh_quote(own)} </dev/null",
            ]
    return "\n".join(out) + "\n"


# The accounts share the vhost: no database of their own.
SETUP = SetupScript(
    cli=("sh", "-s"),
    script=lambda logins, admin: rabbitmq_setup_sh([login_account(x, databases=False) for x in logins], vhost=VHOST),
)


# --- Backups: the definitions (users, vhosts, permissions, policies, queues, exchanges) ---------

# rabbitmqctl in the container authenticates to the node with its Erlang cookie, as the account
# step does: the HTTP API's definitions export would need an account with the administrator tag,
# an administrator in all but name, so RabbitMQ has no backup account. The messages are not backed
# up: a development broker's queues are transient work.
_RMQ_SIDE = '"${RABBITMQ_SIDE_DIR:-/var/lib/rabbitmq}/devstack-restore"'


def _rmq_fingerprint(part: Part, on_side: bool) -> str:
    """The definitions' size and CRC (cksum): of a fresh export, or of the side copy. An export
    is deterministic (sorted), so an unchanged broker exports the very bytes the dump held."""
    source = f"cat {_RMQ_SIDE}/definitions.json" if on_side else "rabbitmqctl --silent export_definitions - </dev/null"
    return (
        NO_PASSWORD
        + f"""{source} > "$secrets/definitions.json"
sum=$(cksum < "$secrets/definitions.json")
crc=${{sum%% *}}
size=${{sum#* }}
printf 'definitions\\t%s\\t%s\\n' "${{size%% *}}" "$crc"
"""
    )


BACKUP = Backup(
    parts="printf 'definitions.json\\t\\n'",
    dump=lambda part: NO_PASSWORD + "rabbitmqctl --silent export_definitions - </dev/null\n",
    fingerprint=_rmq_fingerprint,
    restore=lambda part: (
        NO_PASSWORD + f"rm -rf {_RMQ_SIDE} && mkdir -p {_RMQ_SIDE}\ncat > {_RMQ_SIDE}/definitions.json\n"
    ),
    # Imported definitions are merged in: what the backup holds comes back as it was; what was
    # created since stays.
    swap=lambda part: (
        NO_PASSWORD
        + f"rabbitmqctl --silent import_definitions {_RMQ_SIDE}/definitions.json </dev/null\nrm -rf {_RMQ_SIDE}\n"
    ),
    discard=lambda part: f"rm -rf {_RMQ_SIDE}\n",
    version="rabbitmqctl version </dev/null 2>/dev/null || echo unknown",
)


# --- Tuning: settings from the container's own memory limit -------------------------------------

RABBITMQ_MEMORY_CONF = "/etc/rabbitmq/conf.d/40-devstack-memory.conf"
HIGH_WATERMARK = 0.6  # of the container's limit: publishers block there; the rest is Erlang's headroom


def rabbitmq_high_watermark_bytes(limit_mb: int) -> int:
    return int(limit_mb * HIGH_WATERMARK) * 1024 * 1024


def rabbitmq_memory_conf(limit_mb: int) -> str:
    """The watermark as an absolute figure computed from the container's limit: RabbitMQ would
    otherwise take its relative watermark of whatever memory it believes the machine has."""
    return (
        f"# devstack: {HIGH_WATERMARK:.0%} of the container's {limit_mb}MiB limit\n"
        f"vm_memory_high_watermark.absolute = {rabbitmq_high_watermark_bytes(limit_mb)}\n"
        f"disk_free_limit.absolute = 256MB\n"
    )


def _config_files(service: Service, context: ConfigContext) -> tuple[ConfigFile, ...]:
    if not context.tuned:
        return ()
    return (ConfigFile(RABBITMQ_MEMORY_CONF, rabbitmq_memory_conf(context.memory_mb)),)


def _tuning(service: Service, limit_mb: int) -> Tuning:
    return Tuning(caches={"vm_memory_high_watermark": f"{rabbitmq_high_watermark_bytes(limit_mb) >> 20}MiB"})


RABBITMQ = Service(
    name="rabbitmq",
    image="rabbitmq",
    tag="3.13.7-management-alpine",
    tier=Tier.DATA,
    host_id=14,
    ports=(
        Port("amqp", 5672, 5672, PLAIN_BESIDE_TLS),
        Port("amqps", 5671, 5671, TLS_PORT),
        Port("management", 15672, 15672),  # HTTPS itself once TLS is required
        Port("management-tls", 15671, 15671, MIGRATION_PORT),
        Port("metrics", 15692),  # HTTPS itself once TLS is required
        Port("metrics-tls", 15691, None, MIGRATION_PORT),
    ),
    volumes=(VolumeMount("rabbitmq-data", "/var/lib/rabbitmq"),),
    healthcheck=Healthcheck(("CMD", "rabbitmq-diagnostics", "-q", "ping")),
    limits=Limits(1, 256, weight=2),
    profiles=STD_UP,
    # rabbitmq (Alpine): adduser -u 100, group rabbitmq 101 in its Dockerfile; its entrypoint
    # steps down with su-exec only when started as root ("allow the container to be started with --user").
    hardening=Hardening(
        user="100:101",
        pids=512,
        pids_reason="the Erlang VM's scheduler, dirty-scheduler and async threads, one set per core",
    ),
    depends_on=("vault",),
    flows=(VAULT_FLOW,),
    # The image dropped *_FILE support: a main config file on the tmpfs carries the admin.
    env=MappingProxyType({"RABBITMQ_CONFIG_FILE": f"{SECRETS_DIR}/rabbitmq.conf"}),
    credentials=Credentials(
        entrypoint=("docker-entrypoint.sh", "rabbitmq-server"),
        fields=(SecretField("user", "dev_admin"), SecretField("password"), SecretField("vhost", VHOST)),
        templates=(
            Template(
                "rabbitmq.conf",
                f"{SECRETS_DIR}/rabbitmq.conf",
                "default_user = {{user}}\ndefault_pass = {{password}}\ndefault_vhost = {{vhost}}\n",
                ValueSyntax.CUTTLEFISH,
            ),
        ),
        owner="rabbitmq:rabbitmq",
    ),
    tls=TlsSupport(owner=100, settings=_tls),
    # The rabbitmq_prometheus plugin's aggregated endpoint (rabbitmq-server v3.13.x:
    # deps/rabbitmq_prometheus/src/collectors/prometheus_rabbitmq_core_metrics_collector.erl;
    # queue metrics summed over queues unless /metrics/per-object is asked for).
    metrics=Metrics(
        "metrics",
        exported=("rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked", "rabbitmq_queue_consumers"),
        dashboard="rabbitmq.json",
    ),
    serves=AccountServer("rabbitmq", port="amqp", setup=SETUP),
    backup=BACKUP,
    config_files=_config_files,
    tuning=_tuning,
)

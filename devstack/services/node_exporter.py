"""node-exporter: the backup age and the disk Docker keeps the platform on.

Two collectors only: `textfile` reads the *.prom files in TEXTFILE_DIR, a volume of its own,
where `tools.backup` puts `devstack_backup.prom` (the gauge
devstack_backup_last_success_timestamp_seconds{store="<service>"}; it looks this directory and
the container name up here, through the catalog); `filesystem` reports the mounts node-exporter
sees from inside its own container. No host path is mounted (/ or /proc of the host would show
every process and file): the filesystems it sees are its container's, the root one among them,
which lives on the disk that holds Docker's images and volumes (/var/lib/docker, or Colima's
VM disk), so its free space is Docker's.

Checked with Debian's prometheus-node-exporter 1.5 (tests/test_node_exporter_real.py): with
only these collectors it serves `node_filesystem_avail_bytes` and `node_filesystem_size_bytes`
by mountpoint, and the textfile's gauges as written."""

from __future__ import annotations

from devstack.model import (
    FULL,
    Hardening,
    Healthcheck,
    Limits,
    Metrics,
    Port,
    ServerTls,
    Service,
    Tier,
    TlsSupport,
    VolumeMount,
    http_probe,
    shell,
)
from devstack.monitoring import BACKUP_METRIC
from devstack.phases import TlsMode
from devstack.services.prometheus import prometheus_web_config
from devstack.tls import TLS_DIR, https_url, with_probe

TEXTFILE_DIR = "/var/lib/node-exporter/textfile"  # in the container, on dev-node-exporter-textfile
NOBODY = 65534  # prom/node-exporter's USER
WEB_CONFIG = "node-exporter-web.yml"

# prometheus/node_exporter@v1.8.2 flags (collector/collector.go --collector.disable-defaults,
# collector/textfile.go --collector.textfile.directory). The image's ENTRYPOINT is
# /bin/node_exporter with no CMD, so these are the whole command.
NODE_EXPORTER_ARGS: tuple[str, ...] = (
    "--collector.disable-defaults",
    "--collector.textfile",
    f"--collector.textfile.directory={TEXTFILE_DIR}",
    "--collector.filesystem",
)


def node_exporter_tls(service: Service, mode: TlsMode, tls_dir: str = TLS_DIR) -> ServerTls:
    """HTTPS only once TLS is required: the exporter-toolkit --web.config.file
    (node_exporter@v1.8.2:node_exporter.go, toolkit's kingpinflag). The image's busybox wget
    cannot check a certificate, so the probe proves the TLS listener answers, as Loki's does."""
    if mode is not TlsMode.REQUIRED:
        return ServerTls()
    web_config = f"{tls_dir}/{WEB_CONFIG}"
    probe = shell(f"wget -q --no-check-certificate -O /dev/null {https_url(service, 'metrics', '/')} || exit 1")
    return ServerTls(
        command=(*NODE_EXPORTER_ARGS, f"--web.config.file={web_config}"),
        files={web_config: prometheus_web_config(tls_dir, "node-exporter")},
        healthcheck=with_probe(service, probe),
    )


NODE_EXPORTER = Service(
    name="node-exporter",
    image="prom/node-exporter",
    tag="v1.8.2",
    tier=Tier.OBSERVABILITY,
    host_id=45,
    ports=(Port("metrics", 9100),),
    volumes=(VolumeMount("node-exporter-textfile", TEXTFILE_DIR),),
    command=NODE_EXPORTER_ARGS,
    user=f"{NOBODY}:{NOBODY}",
    # Not `confined`: its certificate is uploaded through the root filesystem, which must stay
    # writable for that (devstack.hardening drops every capability at strict, as for the others).
    hardening=Hardening(user=f"{NOBODY}:{NOBODY}"),
    healthcheck=Healthcheck(http_probe("http://127.0.0.1:9100/")),
    limits=Limits(0.25, 32),
    profiles=FULL,
    feature="backups",  # it carries the backup age; the disk alerts come with it
    tls=TlsSupport(owner=NOBODY, settings=node_exporter_tls),
    # node_exporter@v1.8.2: collector/filesystem_common.go (node_filesystem_{avail,size}_bytes
    # by device, fstype, mountpoint), and the backup gauge the textfile carries.
    metrics=Metrics(
        "metrics",
        exported=("node_filesystem_avail_bytes", "node_filesystem_size_bytes", BACKUP_METRIC),
    ),
)

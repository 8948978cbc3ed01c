"""node-exporter for real: Debian's prometheus-node-exporter, in a container run the way the plan
runs node-exporter's at strict (its command, its textfile volume at TEXTFILE_DIR, nobody, no
capability, no host path; read-only too, since this stand-in gets no uploads), reads the backup
textfile and reports the filesystem under its volume; Debian's Prometheus scrapes it with the
job the plan generates and the backup alert rules see the gauge.

The image is a stand-in (nothing can be pulled): the Debian binary and the C library it links,
imported with `docker import`. Docker objects are named `devstack-obs-*`; the container is on a
network of its own, its port published on 127.0.0.1 only.

What this proves about the disk rule: inside a container, with no host path, the filesystem
collector reports the volume's mount at TEXTFILE_DIR (the disk Docker keeps its volumes on), so
the rule's `mountpoint` matches it."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devstack.services.node_exporter import BACKUP_METRIC, NODE_EXPORTER, TEXTFILE_DIR
from tests.conftest import containers, make_plan
from tests.dockerlab import docker, docker_unavailable_reason
from tests.realservers import _find, _server_dir, _server_process, _wait_until, _write_owned, free_port

pytestmark = pytest.mark.real

BINARY = Path("/usr/bin/prometheus-node-exporter")
PREFIX = "devstack-obs"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)", re.MULTILINE)


def _libraries(binary: Path) -> list[Path]:
    """The shared objects the dynamic loader would map for `binary` (from ldd)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=30, check=True).stdout
    return [Path(p) for p in re.findall(r"(/\S+\.so[.\d]*)", out)]


def _rootfs() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(BINARY, arcname="bin/node_exporter")
        for library in _libraries(BINARY):
            tar.add(library.resolve(), arcname=str(library).lstrip("/"))
        for directory in ("tmp", TEXTFILE_DIR.lstrip("/")):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
    return buffer.getvalue()


@contextlib.contextmanager
def node_exporter_container() -> Iterator[tuple[str, int]]:
    """(container, published 127.0.0.1 port) of the stand-in, run as the plan runs it."""
    name = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    image = f"{name}:node-exporter"
    docker("import", "--change", 'ENTRYPOINT ["/bin/node_exporter"]', "-", image, stdin=_rootfs())
    volume = docker("volume", "create", f"{name}-textfile").strip()
    network = docker("network", "create", "--internal=false", f"{name}-net").strip()
    port = NODE_EXPORTER.port("metrics").container
    try:
        docker(
            *("run", "-d", "--name", name, "--network", f"{name}-net"),
            *("--user", NODE_EXPORTER.user or "", "--read-only", "--cap-drop", "ALL"),
            *("--security-opt", "no-new-privileges:true", "-p", f"127.0.0.1::{port}"),
            *("-v", f"{volume}:{TEXTFILE_DIR}", image, *NODE_EXPORTER.command),
        )
        mapped = docker("port", name, f"{port}/tcp").strip().splitlines()[0]
        yield name, int(mapped.rsplit(":", 1)[1])
    finally:
        docker("rm", "-f", name, check=False)
        docker("network", "rm", network, check=False)
        docker("volume", "rm", volume, check=False)
        docker("image", "rm", image, check=False)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def _query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.loads(answer.read())["data"]["result"]
    except OSError:
        return []


def _check_scrape(text: str, stamp: int) -> None:
    """The textfile's gauge as written; the volume's filesystem; no collector beyond the two."""
    samples = {(n, labels): float(v) for n, labels, v in SAMPLE.findall(text)}
    assert samples[(BACKUP_METRIC, '{store="postgres"}')] == stamp
    avail = {
        re.search(r'mountpoint="([^"]+)"', labels)[1]: value  # type: ignore[index]
        for (n, labels), value in samples.items()
        if n == "node_filesystem_avail_bytes"
    }
    assert TEXTFILE_DIR in avail, sorted(avail)
    size = [v for (n, labels), v in samples.items() if n == "node_filesystem_size_bytes" and TEXTFILE_DIR in labels]
    assert size
    assert 0 < avail[TEXTFILE_DIR] <= size[0]
    assert not [n for n, _ in samples if n.startswith(("node_cpu", "node_memory", "node_network"))]
    assert NODE_EXPORTER.metrics is not None
    assert {n for n, _ in samples} >= set(NODE_EXPORTER.metrics.exported)


def test_node_exporter_reads_the_backup_textfile_and_sees_its_volume() -> None:
    reason = docker_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    if not BINARY.exists() or shutil.which("ldd") is None:
        pytest.skip("prometheus-node-exporter missing: apt-get install prometheus-node-exporter (.ci/apt-packages)")
    try:
        prometheus_bin = _find("prometheus")
    except RuntimeError:
        pytest.skip("prometheus missing: apt-get install prometheus (.ci/apt-packages)")
    run = make_plan("profiles=full", "phase=2")
    uploads = {u["file"]: u["content"] for u in containers(run)["dev-prometheus"]["uploads"]}
    config = yaml.safe_load(uploads["/etc/prometheus/prometheus.yml"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == NODE_EXPORTER.name]
    backup_rules = uploads["/etc/prometheus/rules/node.yml"]

    with node_exporter_container() as (name, port), _server_dir("devstack-obs-prom-") as root:
        # What tools.backup does: a file rendered elsewhere, copied into the textfile directory.
        stamp = int(time.time()) - 27 * 3600  # 27 hours ago: BackupTooOld, not BackupMuchTooOld
        prom = root / "devstack_backup.prom"
        prom.write_text(f'# TYPE {BACKUP_METRIC} gauge\n{BACKUP_METRIC}{{store="postgres"}} {stamp}\n')
        prom.chmod(0o644)
        docker("cp", str(prom), f"{name}:{TEXTFILE_DIR}/devstack_backup.prom")
        text = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and BACKUP_METRIC not in text:
            with contextlib.suppress(OSError):
                text = _scrape(port)
            time.sleep(0.3)
        _check_scrape(text, stamp)

        # Debian's Prometheus with the generated job (target mapped to the published port) and
        # the shipped node rules.
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
        prometheus_port = free_port()
        rules = root / "node.yml"
        _write_owned(rules, backup_rules)
        shipped = {"global": config["global"], "rule_files": [str(rules)], "scrape_configs": [job]}
        prometheus_yml = root / "prometheus.yml"
        _write_owned(prometheus_yml, yaml.safe_dump(shipped))
        (root / "data").mkdir()
        shutil.chown(root / "data", *(root.owner(), root.group()))
        args = [
            prometheus_bin,
            f"--config.file={prometheus_yml}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ]
        log = root / "prometheus.log"
        with _server_process(args, log, 15) as process:
            query = f'ALERTS{{alertname="BackupTooOld", store="postgres", service="{NODE_EXPORTER.name}"}}'
            _wait_until(lambda: bool(_query(prometheus_port, query)), process, log, "BackupTooOld", timeout=90)
            assert not _query(prometheus_port, 'ALERTS{alertname="BackupMuchTooOld"}')
            up = _query(prometheus_port, f'up{{job="{NODE_EXPORTER.name}"}}')
            assert [r["value"][1] for r in up] == ["1"]

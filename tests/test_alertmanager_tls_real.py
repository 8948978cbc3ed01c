"""Alertmanager once TLS is required, for real: Debian's Alertmanager with the plan's command,
web config and certificate (paths moved into a scratch folder, listening on 127.0.0.1 with its
cluster listener off), probed by the plan's own health check (amtool verifying the CA), and
refusing plaintext."""

from __future__ import annotations

import http.client
import shutil
import signal
import subprocess

import pytest

from devstack.catalog import SERVICES_BY_NAME
from devstack.phases import TlsMode
from devstack.services.alertmanager import CONFIG_PATH, alertmanager_tls
from devstack.tls import TLS_DIR
from tests.conftest import containers, make_plan
from tests.planpki import server_files
from tests.realservers import _find, _server_dir, _server_process, _wait_until, _write_owned, free_port

pytestmark = pytest.mark.real
PLAN = ("phase=4", "profiles=full")
END = "-----END CERTIFICATE-----"


def _plaintext_status(port: int) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/-/healthy")
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def test_alertmanager_serves_https_its_probe_verifies_and_plaintext_is_refused() -> None:
    try:
        binary = _find("prometheus-alertmanager")
    except RuntimeError:
        pytest.skip("prometheus-alertmanager missing: apt-get install prometheus-alertmanager (.ci/apt-packages)")
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool missing: apt-get install prometheus-alertmanager (.ci/apt-packages)")
    service = SERVICES_BY_NAME["alertmanager"]
    planned = containers(make_plan(*PLAN))[service.container_name]
    pki = server_files(list(PLAN), (service.name,))[service.name]
    port = free_port()
    with _server_dir("devstack-am-tls-") as root:
        moved = str(root)
        for name, text in pki.items():
            _write_owned(root / name, text)
        for upload in planned["uploads"]:
            path, content = upload["file"], upload["content"]
            if path.startswith(f"{TLS_DIR}/") and path.endswith(".yml") and isinstance(content, str):
                _write_owned(root / path.rsplit("/", 1)[1], content.replace(TLS_DIR, moved))
        config = next(u["content"] for u in planned["uploads"] if u["file"] == CONFIG_PATH)
        _write_owned(root / "alertmanager.yml", config)
        # The plan's command, its paths moved; the listener on 127.0.0.1 and no cluster.
        assert planned["command"] == list(alertmanager_tls(service, TlsMode.REQUIRED).command or ())
        mapped = {
            "--config.file": str(root / "alertmanager.yml"),
            "--storage.path": str(root / "data"),
        }
        args = [binary]
        for arg in planned["command"]:
            flag, _, value = arg.partition("=")
            args.append(f"{flag}={mapped.get(flag, value.replace(TLS_DIR, moved))}")
        args += [f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
        probe = [
            a.replace(TLS_DIR, moved).replace("localhost:9093", f"localhost:{port}").replace("/bin/amtool", amtool)
            for a in planned["healthcheck"]["tests"][1:]
        ]
        log = root / "alertmanager.log"

        def probe_passes() -> bool:
            return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0

        with _server_process(args, log, signal.SIGTERM) as process:
            _wait_until(probe_passes, process, log, "alertmanager over HTTPS (the plan's probe)")
            status = _plaintext_status(port)
            assert status != 200, status  # Go answers 400 to plain HTTP on a TLS port
            # The probe really verifies: trusting another certificate (Vault's leaf alone, without
            # the intermediate that follows it in its file) instead of the CA, it fails.
            vault_chain = server_files(list(PLAN), ("vault",))["vault"]["server.crt"]
            leaf_only = vault_chain[: vault_chain.index(END) + len(END)] + "\n"
            other_ca = root / "other-ca.crt"
            _write_owned(other_ca, leaf_only)
            http_config = root / "amtool-http.yml"
            original = http_config.read_text()
            _write_owned(http_config, original.replace(f"{moved}/ca.crt", str(other_ca)))
            assert not probe_passes()
            _write_owned(http_config, original)
            assert probe_passes()

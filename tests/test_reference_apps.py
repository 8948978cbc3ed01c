"""The reference APIs' own code, run for real on 127.0.0.1 with the environment the catalog
gives each container: health, metrics, and backends reported without a credential."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.catalog import SERVICES_BY_NAME
from tests.realservers import free_port

pytestmark = pytest.mark.real
APPS = Path(__file__).resolve().parent.parent / "apps"
PASSWORD = "app-test-password-never-printed"


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _environment(service: str, port: int, secrets: Path) -> dict[str, str]:
    env = dict(SERVICES_BY_NAME[service].env)
    for key, value in list(env.items()):
        if key.endswith("_PASSWORD_FILE"):
            target = secrets / Path(value).name
            target.write_text(PASSWORD)
            env[key] = str(target)
    return {**os.environ, **env, "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(port)}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    processes: list[subprocess.Popen[bytes]] = []

    def start(service: str, argv: list[str], timeout: float = 60) -> int:
        port = free_port()
        process = subprocess.Popen(argv, env=_environment(service, port, tmp_path), cwd=tmp_path)
        processes.append(process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if _get(port, "/health")[0] == 200:
                    return port
            except OSError:
                pass
            assert process.poll() is None, f"{service} exited with {process.returncode}"
            time.sleep(0.1)
        raise AssertionError(f"{service} did not answer within {timeout}s")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def _check(port: int, service: str, with_backends: bool) -> None:
    assert _get(port, "/health") == (200, '{"status": "ok"}') or json.loads(_get(port, "/health")[1]) == {
        "status": "ok"
    }
    status, metrics = _get(port, "/metrics")
    assert status == 200
    assert "devstack_api_up 1" in metrics
    status, body = _get(port, "/")
    assert status == 200
    assert PASSWORD not in body
    document = json.loads(body)
    assert document["service"] == service
    if with_backends:
        assert set(document["backends"]) == {"postgres", "mysql", "mongodb", "redis", "rabbitmq"}
        assert document["backends"]["postgres"]["user"] == service.replace("-", "_")
        assert all(b["credentials"] is True for b in document["backends"].values())
    assert _get(port, "/nope")[0] == 404


def test_python_api(serve) -> None:
    port = serve("reference-api", [sys.executable, str(APPS / "api.py")])
    _check(port, "reference-api", with_backends=True)


def test_node_api(serve) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    port = serve("nodejs-api", [node, str(APPS / "server.js")])
    _check(port, "nodejs-api", with_backends=True)


def test_go_api(serve) -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed here (the golang image runs it)")
    port = serve("golang-api", [go, "run", str(APPS / "main.go")], timeout=120)
    _check(port, "golang-api", with_backends=True)


def test_rust_api(serve, tmp_path: Path) -> None:
    rustc = shutil.which("rustc")
    if rustc is None:
        pytest.skip("rustc is not installed here (the rust image compiles it)")
    binary = tmp_path / "api"
    subprocess.run([rustc, "-O", "-o", str(binary), str(APPS / "main.rs")], check=True, timeout=300)
    port = serve("rust-api", [str(binary)])
    _check(port, "rust-api", with_backends=False)


# --- HTTPS, with the plan's own certificates ---------------------------------------------------


@pytest.fixture(scope="module")
def api_certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per API: a directory with server.crt (leaf + intermediate), server.key and ca.crt."""
    from tests.planpki import server_files

    dirs = {}
    for service, files in server_files(["phase=4", "profiles=reference"], ("reference-api", "nodejs-api")).items():
        directory = tmp_path_factory.mktemp(service)
        for name, text in files.items():
            (directory / name).write_text(text)
        dirs[service] = directory
    return dirs


def _https(port: int, ca: Path) -> int:
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(f"https://localhost:{port}/health", timeout=3, context=context) as response:
        return response.status


def _tls12_accepts(port: int, ca: Path, cipher: str) -> bool:
    """Whether the server completes a TLS 1.2 handshake offering this one suite."""
    import ssl

    from tests.tlsclient import handshake, tls12_context

    context = tls12_context(ca, cipher)  # the client can offer it: only the server may refuse
    try:
        handshake(port, context)
    except ssl.SSLError:
        return False
    return True


def _start_tls(
    service: str, argv: list[str], mode: str, certs: Path, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], int, int]:
    http_port, https_port = free_port(), free_port()
    env = _environment(service, http_port, tmp_path)
    env |= {"HTTPS_PORT": str(https_port), "TLS_MODE": mode}
    env |= {"TLS_CERT_FILE": str(certs / "server.crt"), "TLS_KEY_FILE": str(certs / "server.key")}
    process = subprocess.Popen(argv, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _https(https_port, certs / "ca.crt") == 200:
                return process, http_port, https_port
        except OSError:
            pass
        assert process.poll() is None, f"{service} exited with {process.returncode}"
        time.sleep(0.1)
    process.terminate()
    raise AssertionError(f"{service} did not answer over HTTPS")


def _probe(service: str, port: int, https: bool, ca: Path) -> int:
    """The catalog's own health probe for this mode, run here (ports and CA path adjusted)."""
    from devstack.phases import TlsMode
    from devstack.services.apis import api_healthcheck

    entry = SERVICES_BY_NAME[service]
    check = api_healthcheck(entry, TlsMode.REQUIRED, str(ca.parent)) if https else entry.healthcheck
    assert check is not None
    test = [part.replace(":8443/", f":{port}/").replace(":8000/", f":{port}/") for part in check.test]
    argv = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
    if argv[0] == "python":
        argv[0] = sys.executable
    return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode


@pytest.mark.parametrize("mode", ["dual", "required"])
@pytest.mark.parametrize(("service", "runtime"), [("reference-api", "python"), ("nodejs-api", "node")])
def test_api_https(api_certs: dict[str, Path], tmp_path: Path, mode: str, service: str, runtime: str) -> None:
    program = sys.executable if runtime == "python" else shutil.which("node")
    if program is None:
        pytest.skip("node is not installed")
    source = APPS / ("api.py" if runtime == "python" else "server.js")
    certs = api_certs[service]
    process, http_port, https_port = _start_tls(service, [program, str(source)], mode, certs, tmp_path)
    try:
        assert _https(https_port, certs / "ca.crt") == 200
        assert _probe(service, https_port, True, certs / "ca.crt") == 0
        assert _tls12_accepts(https_port, certs / "ca.crt", "ECDHE-ECDSA-AES128-GCM-SHA256")
        assert not _tls12_accepts(https_port, certs / "ca.crt", "ECDHE-ECDSA-AES128-SHA256")  # CBC
        assert not _tls12_accepts(https_port, certs / "ca.crt", "ECDHE-ECDSA-AES256-SHA")  # CBC, SHA-1
        if mode == "dual":
            assert _get(http_port, "/health")[0] == 200
            assert _probe(service, http_port, False, certs / "ca.crt") == 0
        else:
            with pytest.raises(urllib.error.URLError, match="refused"):
                _get(http_port, "/health")
    finally:
        process.terminate()
        process.wait(timeout=10)

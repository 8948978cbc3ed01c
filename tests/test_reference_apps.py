"""The reference APIs' own code, run for real on 127.0.0.1 with the environment the catalog
gives each container: health, metrics, and backends reported without a credential."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.catalog import SERVICES_BY_NAME

pytestmark = pytest.mark.real
APPS = Path(__file__).resolve().parent.parent / "apps"
PASSWORD = "app-test-password-never-printed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        port = _free_port()
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

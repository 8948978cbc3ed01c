"""What a real Docker engine does with the upload that puts the stack's CA over /etc/ssl/cert.pem
(Service.system_ca_bundle, once TLS is required). In Alpine that path is a symlink to
certs/ca-certificates.crt; busybox wget's ssl_client reads it, and the wrapper only uses wget
when it holds exactly the CA. The upload is the Docker API's copy into a container, as `docker
cp` makes it."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.dockerlab import docker

pytestmark = pytest.mark.real

CA = "-----BEGIN CERTIFICATE-----\nour stack's CA\n-----END CERTIFICATE-----\n"


def _alpine_layout() -> bytes:
    """/etc/ssl as Alpine ships it: the public bundle, and cert.pem pointing at it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("ssl", "ssl/certs"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        public = b"public roots\n"
        info = tarfile.TarInfo("ssl/certs/ca-certificates.crt")
        info.size, info.mode = len(public), 0o644
        tar.addfile(info, io.BytesIO(public))
        link = tarfile.TarInfo("ssl/cert.pem")
        link.type, link.linkname = tarfile.SYMTYPE, "certs/ca-certificates.crt"
        tar.addfile(link)
    return buffer.getvalue()


def test_the_ca_uploaded_over_alpines_cert_pem_is_what_ssl_client_reads(busybox_image: str, tmp_path: Path) -> None:
    name = f"devstack-bundle-{uuid.uuid4().hex[:8]}"
    script = "cat /etc/ssl/cert.pem; echo ==; cat /etc/ssl/certs/ca-certificates.crt"
    docker("create", "--name", name, "--network", "none", busybox_image, "/bin/sh", "-c", script)
    try:
        docker("cp", "-", f"{name}:/etc", stdin=_alpine_layout())
        ca = tmp_path / "ca.crt"
        ca.write_text(CA)
        docker("cp", str(ca), f"{name}:/etc/ssl/cert.pem")
        docker("start", name)
        docker("wait", name)
        cert_pem, public = docker("logs", name).split("==\n")
    finally:
        docker("rm", "-f", name, check=False)
    # Docker writes through the symlink: cert.pem reads as the CA, byte for byte (the wrapper's
    # cmp), and the public bundle behind it is the CA too. These images need no public root.
    assert cert_pem == CA
    assert public == CA

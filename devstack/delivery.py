"""How a container receives its credentials (phase 0: the root token, as a file).

The image's entrypoint is replaced by one POSIX sh wrapper that reads the service's own
secret from Vault, writes each value to a file on a tmpfs, renders the image's config
templates, then execs the image's original entrypoint and command. Everything here is
non-secret; the token file is added by the component, as a Pulumi secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from devstack.model import SECRETS_DIR, TEMPLATE_DIR, ConfigFile, Service, ValueSyntax
from devstack.phases import TlsMode
from devstack.services.vault import VAULT
from devstack.tls import CA_FILE, TLS_DIR

WRAPPER_SOURCE = Path(__file__).resolve().parent.parent / "scripts" / "entrypoint.sh"
WRAPPER_PATH = "/devstack/entrypoint.sh"
TOKEN_PATH = "/devstack/vault-token"  # phase 0 only: the root token
ROLE_ID_PATH = "/devstack/approle/role-id"
SECRET_ID_PATH = "/devstack/approle/secret-id"
VAULT_ADDR = "http://vault:8200"
VAULT_TLS_ADDR = "https://vault:8200"  # once TLS is required; the name is in Vault's certificate
# Dual mode: Vault's HTTPS listener, on its own port beside the plain one.
VAULT_DUAL_ADDR = f"https://vault:{VAULT.port('https').container}"


@dataclass(frozen=True)
class Delivery:
    entrypoint: tuple[str, ...]
    command: tuple[str, ...]
    env: Mapping[str, str]
    files: tuple[ConfigFile, ...]
    tmpfs: Mapping[str, str]
    file_owner: int  # uid that must read the uploaded token file


def delivery(
    service: Service,
    approle: bool,
    tls: TlsMode = TlsMode.OFF,
    strict: bool = False,
    run_as_uid: int | None = None,
) -> Delivery:
    """approle: log in with the container's own AppRole (files role-id and secret-id);
    otherwise read with the root token from a file (phase 0, the rollback target). From dual
    mode on the wrapper reaches Vault over HTTPS and verifies it against the stack's CA: on
    Vault's HTTPS port beside the plain one (dual), then on its only port (required). Every
    image the catalog delivers to has a client that verifies (curl, openssl, or busybox wget
    with the CA as its system bundle): the AppRole login and the read never cross a bridge in
    plaintext once a certificate exists. strict: the wrapper never uses a client that would
    show the token on its command line (busybox wget). run_as_uid: the user the container
    runs as when it is not the image's own (the hardening feature)."""
    credentials = service.credentials
    if credentials is None:
        raise ValueError(f"{service.name} has no credentials to deliver")
    login = (
        {"DEVSTACK_AUTH": "approle", "DEVSTACK_ROLE_ID_FILE": ROLE_ID_PATH, "DEVSTACK_SECRET_ID_FILE": SECRET_ID_PATH}
        if approle
        else {"DEVSTACK_TOKEN_FILE": TOKEN_PATH}
    )
    address = {TlsMode.OFF: VAULT_ADDR, TlsMode.DUAL: VAULT_DUAL_ADDR, TlsMode.REQUIRED: VAULT_TLS_ADDR}[tls]
    vault = {"VAULT_ADDR": address} | ({"DEVSTACK_VAULT_CA": f"{TLS_DIR}/{CA_FILE}"} if tls is not TlsMode.OFF else {})
    env = {
        **vault,
        "DEVSTACK_SECRET_PATH": service.name,
        **login,
        "DEVSTACK_SECRETS_DIR": SECRETS_DIR,
        "DEVSTACK_TEMPLATE_DIR": TEMPLATE_DIR,
        **credentials.env,
    }
    uid = credentials.run_as_uid if run_as_uid is None else run_as_uid
    if credentials.owner and uid == 0:
        env["DEVSTACK_SECRETS_OWNER"] = credentials.owner  # the wrapper runs as root and gives them away
    if strict:
        env["DEVSTACK_NO_TOKEN_ARGV"] = "1"
    if credentials.templates:
        env["DEVSTACK_TEMPLATES"] = " ".join(f"{t.name}:{t.dest}:0400:{t.syntax}" for t in credentials.templates)
    files = (
        ConfigFile(WRAPPER_PATH, WRAPPER_SOURCE.read_text()),
        *(ConfigFile(f"{TEMPLATE_DIR}/{t.name}", t.content) for t in credentials.templates),
    )
    # 0711: the image's own user (after it drops root) may open its files but not list them.
    tmpfs = {SECRETS_DIR: f"rw,noexec,nosuid,size=1m,mode=0711,uid={uid}"}
    return Delivery(
        entrypoint=("/bin/sh", WRAPPER_PATH),
        command=credentials.entrypoint,
        env=MappingProxyType(env),
        files=files,
        tmpfs=MappingProxyType(tmpfs),
        file_owner=uid,
    )


def render(template: str, values: Mapping[str, str], syntax: ValueSyntax) -> str:
    """A template filled in by the platform, for a service whose values are uploaded
    (Credentials.uploaded_because): the wrapper's {{key}} placeholders, LINE syntax only (the
    one such templates use), a value with a control character refused as the wrapper does."""
    if syntax is not ValueSyntax.LINE:
        raise ValueError(f"uploaded templates are LINE only, not {syntax}")
    for key, value in values.items():
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"secret key {key} has a control character")
        template = template.replace("{{" + key + "}}", value)
    if "{{" in template:
        raise ValueError("template uses a key the secret does not have")
    return template

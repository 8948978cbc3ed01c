"""scripts/entrypoint.sh against an HTTPS Vault (FakeVault(tls=...)), run for real.

Once TLS is required the wrapper gets VAULT_ADDR=https://... and DEVSTACK_VAULT_CA, and reaches
Vault only through a client that verifies the chain to that CA and the host name: curl (the CA
in its config on stdin), else the openssl CLI (s_client, the request written by builtins into
its stdin), else busybox wget with Alpine's ssl_client when the system bundle is that CA. perl
and nc stay plaintext-only. The certificates are made here with `cryptography`: a root, an
intermediate and a leaf for vault, localhost and 127.0.0.1 (served with the intermediate, as
the platform uploads them), a leaf for "vault" alone, and an unrelated root.

Debian's busybox wget cannot exercise Alpine's ssl_client for real (it does TLS itself, or
through `openssl s_client` when one is on PATH, and Debian's busybox has an `ssl_client`
applet of its own that checks no certificate). The wget tests therefore check the refusals,
and, with a stand-in `ssl_client`, only the wrapper's plumbing: that it hands the https://
address to wget when the conditions hold, never with --no-check-certificate.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack.tls import CA_FILE, CERT_FILE, KEY_FILE
from tests.fakevault import FakeVault
from tests.planpki import server_files
from tests.realservers import free_port
from tests.test_entrypoint_approle_sh import POLICY, AppRoleBox
from tests.test_entrypoint_sh import (
    BUSYBOX,
    DASH,
    JSON_PASSWORD_BYTES,
    PASSWORD_BYTES,
    SECRET,
    VARIANTS,
    Container,
    Run,
    Variant,
    _program,
    assert_one_clear_failure,
    make_container,
    make_spy_toolbox,
    make_toolbox,
)
from tests.testpki import Pki, make_pki

OPENSSL = shutil.which("openssl")

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (CI installs busybox-static)"),
]

CURL = Variant("https-busybox-curl", "busybox", ("busybox", "curl"), "devstack-entrypoint-curl")
OPENSSL_BUSYBOX = Variant("https-busybox-openssl", "busybox", ("busybox", "openssl"), "devstack-entrypoint-openssl")
# a Debian-like image: dash, mawk and openssl, neither curl nor wget (the RabbitMQ image's case)
OPENSSL_DASH = Variant("https-dash-mawk-openssl", "dash", ("system", "mawk", "openssl"), "devstack-entrypoint-openssl")
VERIFYING = (CURL, OPENSSL_BUSYBOX, OPENSSL_DASH)
# busybox sh finds its own applets whatever PATH says, Debian's ssl_client applet among them
BUSYBOX_ONLY = Variant("https-busybox-only", "busybox", ("busybox",), "")
# dash with busybox applets but no ssl_client (and no nc): wget alone
DASH_WGET = Variant("https-dash-busybox-wget", "dash", ("busybox",), "", without=("nc", "ssl_client"))
PERL_ONLY = next(v for v in VARIANTS if v.id == "debian-dash-mawk-perl")

NO_VERIFIER = "this image has no client that can verify Vault's certificate"
# what Alpine's ssl_client prints for -h; the stand-in prints it too, and nothing else
ALPINE_SSL_CLIENT = "#!/bin/sh\necho 'usage: ssl_client [-s FD] [-I] -n SNI'\n"


# -- certificates ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


# -- Vault and the containers ---------------------------------------------------------------------


@contextmanager
def _serve(chain: Path, key: Path) -> Iterator[FakeVault]:
    """An unsealed fake Vault on HTTPS with the postgres secret, role and policy."""
    with FakeVault(tls=(chain, key)) as server:
        server.ready()
        server.put_secret("postgres", SECRET)
        server.enable_approle()
        server.load_policy_hcl("postgres", POLICY)
        yield server


@pytest.fixture
def vault(pki: Pki) -> Iterator[FakeVault]:
    with _serve(pki.chain, pki.key) as server:
        yield server


@pytest.fixture
def misnamed(pki: Pki) -> Iterator[FakeVault]:
    """A Vault whose certificate names "vault" only: neither localhost nor 127.0.0.1."""
    with _serve(pki.vault_only_chain, pki.vault_only_key) as server:
        yield server


def make_box(toolboxes: Path, tmp_path: Path, variant: Variant, vault: FakeVault) -> AppRoleBox:
    return make_container(AppRoleBox, toolboxes, tmp_path, variant, vault)


@pytest.fixture(params=VERIFYING, ids=[v.id for v in VERIFYING])
def box(request: pytest.FixtureRequest, toolboxes: Path, tmp_path: Path, vault: FakeVault) -> AppRoleBox:
    if request.param.tools[-1] == "openssl" and OPENSSL is None:
        pytest.skip("openssl is not installed")
    return make_box(toolboxes, tmp_path, request.param, vault)


def with_stand_in_ssl_client(toolboxes: Path, variant: Variant) -> Path:
    """The variant's toolbox plus a stand-in for Alpine's ssl_client (it is never run for TLS)."""
    directory = make_toolbox(toolboxes, variant)
    stand_in = directory / "ssl_client"
    if not stand_in.exists():
        stand_in.write_text(ALPINE_SSL_CLIENT.replace("/bin/sh", _program("dash")))
        stand_in.chmod(0o755)
    return directory


def assert_never_reached(vault: FakeVault) -> None:
    """Nothing reached Vault: no request, not even a TLS handshake."""
    assert vault.log == []
    assert vault.tls_connections == 0


def assert_refused_by_the_client(run: Run, vault: FakeVault, *fragments: str) -> None:
    """The client saw the certificate and refused it: not a byte of HTTP reached Vault."""
    assert_one_clear_failure(run, vault, "is not ready after 0s", *fragments)
    assert vault.log == []
    assert vault.tls_connections >= 1


# -- the verifying clients ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_reads_the_secret_over_https(box: AppRoleBox, vault: FakeVault, pki: Pki, host: str) -> None:
    box.templates.mkdir(parents=True)
    (box.templates / "conf").write_text("{{username}}:{{password}}")
    dest = box.root / "etc" / "conf"
    run = box.run(
        vault.url_for(host),
        "cat",
        str(box.secrets_dir / "password"),
        DEVSTACK_VAULT_CA=str(pki.ca),
        DEVSTACK_TEMPLATES=f"conf:{dest}:0400:json",
        # Vault is on the Docker network: never through a proxy Docker passes in
        **dict.fromkeys(("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"), "http://127.0.0.1:9"),
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == PASSWORD_BYTES
    assert dest.read_bytes() == b"app:" + JSON_PASSWORD_BYTES
    assert run.stderr.startswith("devstack-entrypoint: secret/postgres -> ")
    assert vault.count("secret/data/postgres", "GET") == 1
    assert all(r.user_agent == box.variant.agent for r in vault.log), vault.log
    assert vault.tls_failures == 0
    assert not [p.name for p in box.secrets_dir.iterdir() if p.name.startswith(".")]


def test_refuses_a_certificate_from_another_ca(box: AppRoleBox, vault: FakeVault, pki: Pki) -> None:
    run = box.run(vault.url_for("localhost"), "echo", "ran", wait=0, DEVSTACK_VAULT_CA=str(pki.other_ca))
    reason = "SSL certificate problem" if box.variant is CURL else "does not verify against"
    assert_refused_by_the_client(run, vault, reason)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_refuses_a_certificate_for_another_name(box: AppRoleBox, misnamed: FakeVault, pki: Pki, host: str) -> None:
    run = box.run(misnamed.url_for(host), "echo", "ran", wait=0, DEVSTACK_VAULT_CA=str(pki.ca))
    if box.variant is CURL:
        reason = f"no alternative certificate subject name matches target host name '{host}'"
    else:
        reason = "hostname mismatch" if host == "localhost" else "IP address mismatch"
    assert_refused_by_the_client(run, misnamed, reason)


def test_only_the_given_ca_is_trusted(box: AppRoleBox, vault: FakeVault, pki: Pki, tmp_path: Path) -> None:
    """What OpenSSL and curl would otherwise trust (SSL_CERT_FILE, SSL_CERT_DIR, CURL_CA_BUNDLE)
    holds our root here, but DEVSTACK_VAULT_CA names the other one: refused all the same."""
    hashed = tmp_path / "certs"
    hashed.mkdir()
    if OPENSSL is not None:
        name = subprocess.run(
            [OPENSSL, "x509", "-in", str(pki.ca), "-noout", "-subject_hash"], capture_output=True, text=True, check=True
        ).stdout.strip()
        shutil.copy(pki.ca, hashed / f"{name}.0")
    run = box.run(
        vault.url_for("localhost"),
        "echo",
        "ran",
        wait=0,
        DEVSTACK_VAULT_CA=str(pki.other_ca),
        SSL_CERT_FILE=str(pki.ca),
        SSL_CERT_DIR=str(hashed),
        CURL_CA_BUNDLE=str(pki.ca),
    )
    assert_refused_by_the_client(run, vault)


def test_approle_login_over_https(box: AppRoleBox, vault: FakeVault, pki: Pki) -> None:
    box.give_ids(vault.create_role("postgres", ["postgres"]), vault.create_secret_id("postgres"))
    run = box.login_run(
        vault.url_for("localhost"), "cat", str(box.secrets_dir / "username"), DEVSTACK_VAULT_CA=str(pki.ca)
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"app"
    assert [(r.method, r.path, r.status) for r in vault.log if r.path != "sys/health"] == [
        ("POST", "auth/approle/login", 200),
        ("GET", "secret/data/postgres", 200),
    ]
    assert all(r.user_agent == box.variant.agent for r in vault.log), vault.log
    for token in vault.tokens:
        assert token not in run.stderr


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "is https:// but DEVSTACK_VAULT_CA (the CA certificate to verify Vault with) is not set"),
        ("", "is not set"),
        ("missing.crt", "DEVSTACK_VAULT_CA file {root}/missing.crt is missing"),
        ("empty.crt", "DEVSTACK_VAULT_CA file {root}/empty.crt holds no PEM certificate"),
        ('quo"te.crt', "must be a path without quotes"),
    ],
    ids=["unset", "empty", "missing", "not-pem", "quoted"],
)
def test_the_ca_is_required(box: AppRoleBox, vault: FakeVault, value: str | None, fragment: str) -> None:
    (box.root / "empty.crt").write_text("")
    (box.root / 'quo"te.crt').write_text("")
    extra = {} if value is None else {"DEVSTACK_VAULT_CA": f"{box.root}/{value}" if value else ""}
    run = box.run(vault.url_for("localhost"), "echo", "ran", wait=30, **extra)
    assert_one_clear_failure(run, vault, fragment.format(root=box.root))
    assert_never_reached(vault)
    assert run.seconds < 15  # at once: well short of the 30 s wait


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_openssl_says_why_it_could_not_connect(toolboxes: Path, tmp_path: Path, vault: FakeVault, pki: Pki) -> None:
    box = make_box(toolboxes, tmp_path, OPENSSL_BUSYBOX, vault)
    port = free_port()
    run = box.run(f"https://localhost:{port}", "echo", "ran", wait=1, DEVSTACK_VAULT_CA=str(pki.ca))
    assert_one_clear_failure(run, vault, "not ready after 1s (openssl s_client: Connection refused)")
    assert 1 <= run.seconds < 15  # the wait, not a hang; room for a loaded machine


# -- nothing secret on a command line, and no way around the verification --------------------------


@pytest.mark.parametrize("client", ["curl", "openssl"])
def test_what_reaches_a_command_line(client: str, tmp_path: Path, vault: FakeVault, pki: Pki) -> None:
    """The token, the AppRole IDs and the secret's values reach no argv; no insecure option."""
    if DASH is None:
        pytest.skip("dash is not installed")
    log = tmp_path / "argv.log"
    spy = make_spy_toolbox(tmp_path / "spy", log, client)
    if client == "openssl":
        shim = spy / "openssl"
        shim.write_text(f'#!{DASH}\nprintf "%s\\n" "openssl $*" >>"{log}"\nexec {_program("openssl")} "$@"\n')
        shim.chmod(0o755)
    box = AppRoleBox(Variant("spy", "dash", (), ""), spy, tmp_path)
    role_id, secret_id = vault.create_role("postgres", ["postgres"]), vault.create_secret_id("postgres")
    box.give_ids(role_id, secret_id)
    run = box.login_run(vault.url_for("localhost"), "true", DEVSTACK_VAULT_CA=str(pki.ca))
    assert run.returncode == 0, run.stderr
    commands = log.read_text(encoding="utf-8", errors="replace").splitlines()
    ran = [line for line in commands if line.startswith(f"{client} ") or f" {client} " in line]
    assert ran, commands
    if client == "openssl":
        assert all(f"-CAfile {pki.ca}" in line and "-verify_return_error" in line for line in ran), ran
        assert all("-verify_hostname localhost" in line for line in ran), ran
    for value in (
        *vault.tokens,
        role_id,
        secret_id,
        *(v for v in SECRET.values() if isinstance(v, str) and len(v) > 3),
    ):
        assert not any(value in line for line in commands), value
    for insecure in (" -k", "--insecure", "--no-check-certificate"):
        assert not any(insecure in line for line in commands), insecure
    assert not [line for line in commands if line.startswith(("wget ", "nc ", "perl "))]
    assert all(r.user_agent == f"devstack-entrypoint-{client}" for r in vault.log), vault.log


def test_curl_trusts_the_given_ca_alone(tmp_path: Path, vault: FakeVault, pki: Pki) -> None:
    """curl's config (on its stdin): the CA, an empty CA directory in place of the one curl was
    built with (Debian's curl keeps /etc/ssl/certs beside --cacert otherwise), https only."""
    assert BUSYBOX is not None
    if DASH is None:
        pytest.skip("dash is not installed")
    configs = tmp_path / "configs.log"
    spy = make_spy_toolbox(tmp_path / "spy", tmp_path / "argv.log", "curl")
    (spy / "curl").write_text(f'#!{DASH}\n{BUSYBOX} tee -a "{configs}" | exec {_program("curl")} "$@"\n')
    box = Container(Variant("spy", "dash", (), ""), spy, tmp_path)
    assert vault.root_token is not None
    box.give_token(vault.root_token)
    run = box.run(vault.url_for("localhost"), "true", DEVSTACK_VAULT_CA=str(pki.ca))
    assert run.returncode == 0, run.stderr
    lines = configs.read_text().splitlines()
    assert lines.count(f'cacert = "{pki.ca}"') == len(vault.log) >= 2
    capaths = [line for line in lines if line.startswith("capath = ")]
    assert len(capaths) == len(vault.log)
    assert all(line.startswith(f'capath = "{box.secrets_dir}/.devstack.') for line in capaths), capaths
    assert all(line.endswith('/capath"') for line in capaths), capaths
    assert lines.count('proto = "=https"') == len(vault.log)
    assert not [line for line in lines if "insecure" in line or line.startswith(("-k", "k "))]


# -- wget, and images with nothing that verifies ------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        # Debian's busybox has an ssl_client applet (busybox sh finds it whatever PATH says): it
        # checks no certificate, so busybox wget is not used, even with the CA as the system bundle.
        (BUSYBOX_ONLY, "ssl_client here is busybox's own"),
        (DASH_WGET, "wget here has no ssl_client"),
    ],
    ids=["busybox-alone", "wget-without-ssl-client"],
)
def test_wget_without_a_verifying_ssl_client_is_refused(
    case: tuple[Variant, str], toolboxes: Path, tmp_path: Path, vault: FakeVault, pki: Pki
) -> None:
    variant, reason = case
    box = make_box(toolboxes, tmp_path, variant, vault)
    run = box.run(
        vault.url_for("localhost"),
        "echo",
        "ran",
        wait=30,
        DEVSTACK_VAULT_CA=str(pki.ca),
        DEVSTACK_SYSTEM_CA=str(pki.ca),
    )
    assert_one_clear_failure(run, vault, NO_VERIFIER, reason)
    assert_never_reached(vault)
    assert run.seconds < 15  # at once: well short of the 30 s wait


@pytest.mark.parametrize("bundle", ["other", "with-others", "missing"])
def test_wget_needs_the_ca_as_the_system_bundle(
    toolboxes: Path, tmp_path: Path, vault: FakeVault, pki: Pki, bundle: str
) -> None:
    """With (a stand-in for) Alpine's ssl_client, which trusts the system bundle and nothing
    else: only when that bundle is our CA, byte for byte."""
    variant = Variant("https-dash-busybox-wget-ssl-client", "dash", ("busybox",), "", without=("nc", "ssl_client"))
    box = AppRoleBox(variant, with_stand_in_ssl_client(toolboxes, variant), tmp_path)
    assert vault.root_token is not None
    box.give_token(vault.root_token)
    system = tmp_path / "cert.pem"
    if bundle == "other":
        shutil.copy(pki.other_ca, system)
    elif bundle == "with-others":
        system.write_bytes(pki.other_ca.read_bytes() + pki.ca.read_bytes())
    run = box.run(
        vault.url_for("localhost"),
        "echo",
        "ran",
        wait=30,
        DEVSTACK_VAULT_CA=str(pki.ca),
        DEVSTACK_SYSTEM_CA=str(system),
    )
    assert_one_clear_failure(run, vault, NO_VERIFIER, f"trusts only {system}, which is not DEVSTACK_VAULT_CA")
    assert_never_reached(vault)
    assert run.seconds < 15  # at once: well short of the 30 s wait


def test_wget_is_handed_https_when_ssl_client_can_verify(tmp_path: Path, vault: FakeVault, pki: Pki) -> None:
    """Plumbing only: a stand-in ssl_client, the CA as the system bundle, and nothing listening.

    The wrapper chooses busybox wget and gives it the https:// address as it is, never with
    --no-check-certificate; that Alpine's ssl_client then verifies is Alpine's part, which
    Debian's busybox wget cannot show (it never runs ssl_client).
    """
    if DASH is None:
        pytest.skip("dash is not installed")
    log = tmp_path / "argv.log"
    spy = make_spy_toolbox(tmp_path / "spy", log, "wget")
    (spy / "ssl_client").write_text(ALPINE_SSL_CLIENT.replace("/bin/sh", DASH))
    box = Container(Variant("spy", "dash", (), ""), spy, tmp_path)
    assert vault.root_token is not None
    box.give_token(vault.root_token)
    system = tmp_path / "cert.pem"
    shutil.copy(pki.ca, system)
    port = free_port()
    run = box.run(
        f"https://localhost:{port}",
        "echo",
        "ran",
        wait=0,
        DEVSTACK_VAULT_CA=str(pki.ca),
        DEVSTACK_SYSTEM_CA=str(system),
    )
    assert_one_clear_failure(run, vault, f"Vault at https://localhost:{port} is not ready after 0s")
    calls = [line for line in log.read_text().splitlines() if line.startswith(("wget ", "timeout 30 wget "))]
    fetches = [line for line in calls if f"https://localhost:{port}/v1/sys/health" in line]
    assert fetches, calls
    assert not [line for line in calls if "--no-check-certificate" in line]


def test_a_wget_other_than_busybox_is_refused(toolboxes: Path, tmp_path: Path, vault: FakeVault, pki: Pki) -> None:
    """GNU wget checks against the system's whole store and never runs ssl_client."""
    if DASH is None:
        pytest.skip("dash is not installed")
    variant = Variant("https-dash-gnu-wget", "dash", ("busybox",), "", without=("nc", "ssl_client", "wget"))
    directory = with_stand_in_ssl_client(toolboxes, variant)
    gnu = directory / "wget"
    if not gnu.exists():
        gnu.write_text(f"#!{DASH}\necho 'GNU Wget 1.21.3, a non-interactive network retriever.'\n")
        gnu.chmod(0o755)
    box = AppRoleBox(variant, directory, tmp_path)
    assert vault.root_token is not None
    box.give_token(vault.root_token)
    run = box.run(
        vault.url_for("localhost"), "echo", "ran", DEVSTACK_VAULT_CA=str(pki.ca), DEVSTACK_SYSTEM_CA=str(pki.ca)
    )
    assert_one_clear_failure(run, vault, NO_VERIFIER, "this wget is not busybox's")
    assert_never_reached(vault)


def test_perl_is_never_used_for_https(toolboxes: Path, tmp_path: Path, vault: FakeVault, pki: Pki) -> None:
    box = make_box(toolboxes, tmp_path, PERL_ONLY, vault)
    run = box.run(vault.url_for("localhost"), "echo", "ran", wait=30, DEVSTACK_VAULT_CA=str(pki.ca))
    assert_one_clear_failure(run, vault, NO_VERIFIER, "perl and nc can only reach http:// addresses")
    assert_never_reached(vault)
    assert run.seconds < 15  # at once: well short of the 30 s wait


# -- http:// as before ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", [CURL, OPENSSL_BUSYBOX], ids=["curl", "busybox-openssl-nc"])
def test_http_ignores_the_ca(toolboxes: Path, tmp_path: Path, variant: Variant) -> None:
    """DEVSTACK_VAULT_CA means nothing for http://; the transports keep their order (nc, not openssl)."""
    with FakeVault() as plain:
        plain.ready()
        plain.put_secret("postgres", SECRET)
        box = make_box(toolboxes, tmp_path, variant, plain)
        run = box.run(plain.address, "cat", str(box.secrets_dir / "username"), DEVSTACK_VAULT_CA="/nonexistent/ca.crt")
        assert run.returncode == 0, run.stderr
        assert run.stdout == b"app"
        agent = "devstack-entrypoint-curl" if variant is CURL else "devstack-entrypoint-nc"
        assert all(r.user_agent == agent for r in plain.log), plain.log


# -- the fake itself ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_fake_serves_https_from_tls_1_2(vault: FakeVault, pki: Pki) -> None:
    assert vault.address == f"https://127.0.0.1:{vault.port}"
    trusting = ssl.create_default_context(cafile=str(pki.ca))
    with urllib.request.urlopen(f"{vault.url_for('localhost')}/v1/sys/health", context=trusting, timeout=5) as answer:
        assert answer.status == 200
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(cafile=str(pki.ca))
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", vault.port), timeout=5) as raw, pytest.raises(ssl.SSLError):
        old.wrap_socket(raw, server_hostname="localhost")
    # a client that stalls in the handshake holds up no one else
    url = f"{vault.address}/v1/sys/health"
    with (
        socket.create_connection(("127.0.0.1", vault.port), timeout=5),
        urllib.request.urlopen(url, context=trusting, timeout=5) as answer,
    ):
        assert answer.status == 200


# -- the plan's own Vault certificate --------------------------------------------------------------


@pytest.fixture(scope="module", params=[1, 4], ids=["phase1-dual", "phase4-required"])
def plan_vault_files(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """The files the plan uploads to the Vault container (dual mode from phase 1, where every
    container reaches Vault's HTTPS port; required at phase 4): its leaf (with the
    intermediate), its key and the root every client is given."""
    directory = tmp_path_factory.mktemp("plan-vault")
    for name, content in server_files([f"phase={request.param}"], ["vault"])["vault"].items():
        (directory / name).write_text(content)
    return directory


@pytest.mark.parametrize("variant", VERIFYING, ids=[v.id for v in VERIFYING])
def test_the_wrapper_verifies_the_plans_vault_certificate(
    variant: Variant, toolboxes: Path, tmp_path: Path, plan_vault_files: Path
) -> None:
    tls_dir = plan_vault_files
    with _serve(tls_dir / CERT_FILE, tls_dir / KEY_FILE) as vault:
        box = make_box(toolboxes, tmp_path, variant, vault)
        box.give_ids(vault.create_role("postgres", ["postgres"]), vault.create_secret_id("postgres"))
        # localhost and 127.0.0.1 are in every leaf; containers dial the name "vault", which is too.
        for host in ("localhost", "127.0.0.1"):
            run = box.login_run(
                vault.url_for(host), "cat", str(box.secrets_dir / "username"), DEVSTACK_VAULT_CA=str(tls_dir / CA_FILE)
            )
            assert run.returncode == 0, run.stderr
            assert run.stdout == b"app"

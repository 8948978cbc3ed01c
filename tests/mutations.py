"""Breaks the program on purpose, once per known defect, and checks that the tests notice.

    python -m tests.mutations            # every mutation: caught / MISSED, then a summary
    python -m tests.mutations --list     # their names
    python -m tests.mutations NAME ...   # some of them

Each mutation replaces one exact piece of source text (found wherever it lives outside tests/,
so moving code between modules does not lose it; it must occur exactly once) in a scratch copy
of this checkout (tracked and new files, as they are now), then runs only the tests that guard
it, in that copy. Caught: those tests fail. MISSED: they pass. A mutation whose text is gone, or
whose tests cannot run (none selected, a tool missing: a skip is not a catch), is an error to
fix here. Exit status 0 only when every mutation run is caught.

The list grows with every defect the project ships: add one `Mutation` that reproduces it and
names the tests that now catch it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
TIMEOUT = 900  # seconds per mutation: a real server or three at most
DESCRIPTION = "Break the program once per known defect and check that the tests notice."


@dataclass(frozen=True)
class Mutation:
    name: str
    why: str  # the defect it stands for
    old: str  # exact source text, once in the program (outside tests/)
    new: str
    tests: tuple[str, ...]  # pytest arguments: only the tests that guard it
    more: tuple[tuple[str, str], ...] = ()  # further (old, new) edits of the same defect


SHIPPED = "tests/test_shipped_real.py"
_CIPHERS = 'CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!3DES:!RC4:!SHA1"'
EXPOSURE = "tests/test_docker_inspect.py"
RABBITMQ = "tests/test_tls_rabbitmq_real.py"
ROOT_SH = "tests/test_vault_bootstrap_root_sh.py"

MUTATIONS = (
    Mutation(
        "redis-no-aclfile",
        "the shipped redis.conf without its aclfile line: Redis with no authentication",
        'f"aclfile {SECRETS_DIR}/{',
        'f"# aclfile {SECRETS_DIR}/{',  # the line becomes a comment: no aclfile directive
        (SHIPPED, "-k", "redis_acl and phase0"),
    ),
    Mutation(
        "pgbouncer-trust",
        "pgbouncer.ini with auth_type = trust",
        "auth_type = scram-sha-256",
        "auth_type = trust",
        (SHIPPED, "-k", "pgbouncer_looks_clients_up and phase0"),
    ),
    Mutation(
        "redis-protected-mode-off",
        "Redis protected-mode no",
        '"protected-mode yes",',
        '"protected-mode no",',
        (SHIPPED, "-k", "protected_mode_refuses_remote"),
    ),
    Mutation(
        "redis-plaintext-kept",
        "Redis keeps its plaintext port once TLS is required (unpublished, but open to every container)",
        'lines += ["port 0", "tls-cluster yes", "tls-replication yes"]',
        'lines += ["tls-cluster yes", "tls-replication yes"]',
        (SHIPPED, "-k", "redis_plaintext and phase4"),
    ),
    Mutation(
        "tls-ports-on-all-interfaces",
        "the ports that exist only from phase 1 (Redis TLS, Vault 8300, AMQPS...) published on 0.0.0.0",
        "published.append(PublishedPort(port.name, port.container, host, settings.bind_address))",
        "published.append(PublishedPort(port.name, port.container, host, settings.bind_address"
        ' if any(m.value == "off" for m in port.open_in) else "0.0.0.0"))',
        (EXPOSURE, "-k", "binds"),
    ),
    Mutation(
        "secret-in-label",
        "a credential in a container label",
        "labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(_labels(args).items())],",
        "labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(_labels(args).items())]"
        ' + [docker.ContainerLabelArgs(label="devstack.debug", value=u.content)'
        ' for u in args.uploads if u.permissions == "0400"],',
        (EXPOSURE, "-k", "docker_inspect and full_reference_127"),
    ),
    Mutation(
        "secret-in-label-unmarked",
        "a credential in a container label, no longer tracked as a secret (only its value shows it)",
        "labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(_labels(args).items())],",
        "labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(_labels(args).items())]"
        ' + [docker.ContainerLabelArgs(label="devstack.debug", value=pulumi.Output.unsecret(u.content))'
        ' for u in args.uploads if u.permissions == "0400"],',
        (EXPOSURE, "-k", "docker_inspect and full_reference_127"),
    ),
    Mutation(
        "secret-in-healthcheck",
        "a credential in a container's healthcheck command",
        "healthcheck=_healthcheck(args.healthcheck or service.healthcheck),",
        'healthcheck=docker.ContainerHealthcheckArgs(tests=["CMD", "true"]'
        ' + [u.content for u in args.uploads if u.permissions == "0400"]),',
        (EXPOSURE, "-k", "docker_inspect and full_reference_127"),
    ),
    Mutation(
        "cbc-sha1-suites",
        "a cipher list that allows CBC suites with SHA-1",
        _CIPHERS,
        'CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!aNULL:!eNULL:!MD5:!3DES:!RC4"',
        (SHIPPED, "-k", "postgres_refuses_weak_tls and phase4"),
    ),
    Mutation(
        "postgres-plaintext-at-phase4",
        "PostgreSQL's required-mode pg_hba lets plaintext clients in",
        "hostnossl all  all  0.0.0.0/0       reject",
        "hostnossl all  all  0.0.0.0/0       scram-sha-256",
        (SHIPPED, "-k", "postgres_plaintext and phase4"),
    ),
    Mutation(
        "postgres-trusts-the-network",
        "PostgreSQL's required-mode pg_hba trusts TLS clients without a password",
        "hostssl   all  all  0.0.0.0/0       scram-sha-256",
        "hostssl   all  all  0.0.0.0/0       trust",
        (SHIPPED, "-k", "postgres_takes_each_client and phase4"),
    ),
    # A lower protocol floor alone changes nothing while every suite is TLS 1.2's AEAD (and
    # OpenSSL 3's default security level refuses TLS 1.1 anyway): the defect is both together.
    Mutation(
        "postgres-tls10",
        "PostgreSQL accepts TLS 1.0 and 1.1 (floor lowered, legacy suites and security level 0)",
        '"ssl_min_protocol_version": "TLSv1.2",',
        '"ssl_min_protocol_version": "TLSv1",',
        (SHIPPED, "-k", "postgres_refuses_weak_tls and phase1"),
        ((_CIPHERS, 'CIPHERS = "DEFAULT:@SECLEVEL=0"'),),
    ),
    Mutation(
        "redis-tls10",
        "Redis accepts TLS 1.0 and 1.1 (floor lowered, legacy suites and security level 0)",
        """'tls-protocols "TLSv1.2 TLSv1.3"',""",
        """'tls-protocols "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3"',""",
        (SHIPPED, "-k", "redis_refuses_weak_tls and phase4"),
        ((_CIPHERS, 'CIPHERS = "DEFAULT:@SECLEVEL=0"'),),
    ),
    Mutation(
        "mysql-plaintext-at-phase4",
        "MySQL without --require-secure-transport once TLS is required",
        'args += ("--require-secure-transport=ON",)',
        "args += ()",
        (SHIPPED, "-k", "mariadb_plaintext and phase4"),
    ),
    Mutation(
        "pgbouncer-plaintext-at-phase4",
        "PgBouncer allows plaintext clients once TLS is required",
        "f\"client_tls_sslmode = {'require' if required else 'allow'}\",",
        'f"client_tls_sslmode = allow",',
        (SHIPPED, "-k", "pgbouncer_plaintext and phase4"),
    ),
    Mutation(
        "rabbitmq-plaintext-at-phase4",
        "RabbitMQ keeps plaintext AMQP once TLS is required",
        'lines.append("listeners.tcp = none")',
        "pass",
        (RABBITMQ, "-k", "plaintext_amqp and required"),
    ),
    Mutation(
        "rabbitmq-cbc-suites",
        "RabbitMQ's suite list takes a CBC suite with SHA-1",
        '    "ECDHE-ECDSA-AES128-GCM-SHA256",\n    "ECDHE-RSA-AES128-GCM-SHA256",\n)',
        '    "ECDHE-ECDSA-AES128-GCM-SHA256",\n    "ECDHE-RSA-AES128-GCM-SHA256",\n    "ECDHE-ECDSA-AES256-SHA",\n)',
        (RABBITMQ, "-k", "aead_suites and required"),
    ),
    Mutation(
        "prometheus-cbc-suites",
        "the Go servers' suite list (Prometheus's web config) takes a CBC suite with SHA-1",
        '    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",\n)',
        '    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",\n    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",\n)',
        ("tests/test_tls_web.py", "-m", "real", "-k", "forward_secret_aead"),
    ),
    Mutation(
        "tier-networks-outlive-the-flat-one",
        "tier and link networks removed only at the end of the update, after Docker refused the flat network",
        "name=spec.docker_name if first is None else _after(first, spec.docker_name),",
        "name=spec.docker_name,",
        ("tests/test_segmentation.py", "-k", "wait_for_the_first", "tests/test_engine_order_real.py"),
    ),
    Mutation(
        "identity-for-stopped-service",
        "AppRoles and policies for every catalog service, also those no profile runs (issue 18)",
        "for name in [*(n for n in self.secrets if n in running), MANAGEMENT]:",
        "for name in [*self.secrets, MANAGEMENT]:",
        ("tests/test_approle.py", "-k", "only_for_a_container"),
    ),
    Mutation(
        "static-ip-on-vaults-tier-address",
        "staticIps accepting the .5 Vault takes in every tier it joins: two containers, one address",
        "    owners = _multi_homed_addresses(subnets)\n",
        "    owners: dict[ipaddress.IPv4Address, tuple[str, str]] = {}\n",
        ("tests/test_bad_input.py", "-k", "vaults_place"),
    ),
    Mutation(
        "certs-renewal-at-window",
        "`certs` printing not-after minus the window as the renewal date, not the next period's start",
        "        renewal = renewal_time(certificate)\n",
        "        renewal = renewal_time(certificate) and not_after - timedelta(days=30)\n",
        ("tests/test_pki.py", "-k", "renewal_date"),
    ),
    Mutation(
        "template-value-raw",
        "the wrapper writes a secret value into a template as is (issue 16: a newline adds a line)",
        "            text = text enc(VAL[k], syn, name, k)",
        "            text = text VAL[k]",
        ("tests/test_template_injection.py", "-k", "hostile"),
    ),
    Mutation(
        "cuttlefish-hash-kept",
        "a # in a RabbitMQ .conf value, where cuttlefish starts a comment and cuts the value",
        'else if (syn == "cuttlefish" && c == "#") why = "a #, where the file starts a comment"',
        'else if (0) why = ""',
        ("tests/test_template_injection.py", "-k", "hostile"),
    ),
    Mutation(
        "hardening-no-pid-limit",
        "the hardening feature without its PID limit",
        "        pids_limit=entry.pids,\n",
        "",
        ("tests/test_hardening.py", "tests/test_crossguard_plan.py", "-k", "phase_4 or every_phase"),
    ),
    Mutation(
        "pgbouncer-exporter-pgpass-unmatched",
        "the exporter's password file names another database: libpq finds no password for it",
        'PGPASS_LINE = f"*:*:{ADMIN_DATABASE}:',
        'PGPASS_LINE = f"*:*:postgres:',
        ("tests/test_pgbouncer_exporter_real.py",),
    ),
    Mutation(
        "pgbouncer-waiting-threshold",
        "PgbouncerClientsWaiting only from two waiting clients: one client waiting never alerts",
        "expr: pgbouncer_pools_client_waiting_connections > 0",
        "expr: pgbouncer_pools_client_waiting_connections > 1",
        ("tests/test_pgbouncer_exporter_real.py", "tests/test_monitoring.py", "-k", "pgbouncer or promtool"),
    ),
    Mutation(
        "hardening-caps-kept",
        "hardened containers keep Docker's default capabilities (NET_RAW among them)",
        'drops=("ALL",),\n        read_only=read_only,',
        "drops=(),\n        read_only=read_only,",
        ("tests/test_hardening_docker.py", "-k", "engine_runs"),
    ),
    Mutation(
        "root-token-not-revoked",
        "at strict the bootstrap sets up the provisioner but never revokes the root token",
        'request POST auth/token/revoke-self "$body" "$answer"',
        'request GET auth/token/lookup-self "" "$answer"',
        (ROOT_SH, "-k", "retire_sets_up"),
    ),
    Mutation(
        "provisioner-ids-readable",
        "the provisioner's role_id and secret_id file left readable by every local user",
        '    write_private "$creds_file.policy" <"$policy_file"\n',
        '    write_private "$creds_file.policy" <"$policy_file"\n    chmod 644 "$creds_file"\n',
        (ROOT_SH, "-k", "retire_sets_up"),
    ),
    Mutation(
        "mock-engine-shared-tracking",
        "every plan in a process shares the SDK's tracked outputs: after a refused resource, the next fails",
        "    _empty_tracking()\n    root = get_root_resource()\n",
        "    root = get_root_resource()\n",
        ("tests/test_mock_engine.py", "-k", "refused_resource"),
    ),
    Mutation(
        "mock-engine-failure-flood",
        "a refused run logs every dependent future's traceback when collected (seconds, hundreds of MiB)",
        "        loop.set_exception_handler(_consequences_unlogged)\n",
        "",
        ("tests/test_mock_engine.py", "-k", "refused_resource"),
    ),
    Mutation(
        "provisioner-old-secret-ids-kept",
        "a lost ids file: a new secret_id is minted and the old one, which never expires, still logs in",
        "    destroy_other_secret_ids\n    use_token\n",
        "    use_token\n",
        (ROOT_SH, "-k", "lost_ids"),
    ),
    Mutation(
        "provisioner-last-secret-id-kept",
        "the last accessor Vault lists (no newline after it) is never read, so never destroyed",
        """{ tr -d '\\n\\r' <"$2" && echo; } | sed -n""",
        """tr -d '\\n\\r' <"$2" | sed -n""",
        (ROOT_SH, "-k", "lost_ids"),
    ),
    Mutation(
        "provisioner-cleanup-not-retried",
        "a run stopped while destroying old secret_ids leaves the applied copies: the next run skips it",
        '    rm -f "$creds_file.policy" "$creds_file.cidrs"\n',
        "",
        (ROOT_SH, "-k", "failed_destroy"),
    ),
    Mutation(
        "provisioner-unbound",
        "the provisioner's secret_id and tokens work from any address (no CIDR binding on its role)",
        ',"secret_id_bound_cidrs":[%s],"token_bound_cidrs":[%s]}\' "$cidr_json" "$cidr_json"',
        "}'",
        (ROOT_SH, "-k", "bound"),
    ),
    Mutation(
        "provisioner-cidrs-not-compared",
        "a changed CIDR binding is never applied: the kept ids still log in, so setup is skipped",
        ' &&\n        [ -s "$creds_file.cidrs" ] && [ "$(cat "$creds_file.cidrs")" = "$provisioner_cidrs" ]',
        "",
        (ROOT_SH, "-k", "changed_cidrs"),
    ),
    Mutation(
        "provisioner-cidrs-not-host",
        "the provisioner bound to addresses other than management's (Vault's first gateway only)",
        "provisioner_cidrs=host_cidrs(settings, VAULT),",
        "provisioner_cidrs=host_cidrs(settings, VAULT)[:1],",
        ("tests/test_root_token_retirement.py", "-k", "bound"),
    ),
    Mutation(
        "no-root-token-back",
        "below strict the bootstrap prints the revoked (or no) root token instead of making a new one",
        '    [ -n "$root_token" ] || generate_root\n    printf',
        "    printf",
        (ROOT_SH, "-k", "below_strict"),
    ),
    Mutation(
        "provider-root-token-at-strict",
        "the Vault provider keeps logging in with a root token at strict",
        "        if args.provisioner_file is None:\n            self.root_token =",
        "        if True:\n            self.root_token =",
        ("tests/test_root_token_retirement.py", "-k", "provisioner"),
    ),
)


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    verdict: str  # caught, MISSED, error
    detail: str
    seconds: float


def _project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (PROJECT_DIR / name).is_file()]


def _copy(files: Sequence[str], dest: Path) -> None:
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_DIR / name, target)


def _locate(root: Path, files: Sequence[str], text: str) -> tuple[Path | None, str]:
    """The one program file holding `text` exactly once, or why there is none."""
    hits = []
    for name in files:
        if name.startswith("tests/") or not name.endswith((".py", ".sh", ".hcl", ".yaml", ".yml")):
            continue
        count = (root / name).read_text(errors="replace").count(text)
        hits += [name] * count
    if len(hits) != 1:
        where = ", ".join(sorted(set(hits))) or "nowhere"
        return None, f"its source text is found {len(hits)} times ({where}); update the mutation"
    return root / hits[0], hits[0]


def _pytest(root: Path, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-rfEs", "--tb=short", *args]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False)


def _verdict(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else result.stderr.strip()[-200:]
    if result.returncode == 1:
        failed = [line.split(" - ")[0] for line in lines if line.startswith(("FAILED ", "ERROR "))]
        why = next((line[1:].strip() for line in lines if line.startswith("E ") and "Error" in line), "")
        return "caught", " | ".join(part[:160] for part in (failed[0] if failed else summary, why) if part)
    if result.returncode == 0 and not any(line.startswith("SKIPPED") for line in lines):
        return "MISSED", "the tests passed"
    return "error", f"the tests did not run cleanly (status {result.returncode}): {summary}"


def run(mutation: Mutation, root: Path, files: Sequence[str]) -> Outcome:
    start = time.monotonic()
    originals: dict[Path, str] = {}
    places = []
    for old, new in ((mutation.old, mutation.new), *mutation.more):
        path, where = _locate(root, files, old)
        if path is None:
            _restore(originals)
            return Outcome(mutation, "error", where, 0.0)
        originals.setdefault(path, path.read_text())
        path.write_text(path.read_text().replace(old, new))
        places.append(where)
    try:
        result = _pytest(root, mutation.tests)
    except subprocess.TimeoutExpired:
        return Outcome(mutation, "error", f"the tests ran over {TIMEOUT}s", time.monotonic() - start)
    finally:
        _restore(originals)
    verdict, detail = _verdict(result)
    return Outcome(mutation, verdict, f"{', '.join(sorted(set(places)))}: {detail}", time.monotonic() - start)


def _restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutations", description=DESCRIPTION)
    parser.add_argument("names", nargs="*", help="run only these mutations (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    known = {m.name: m for m in MUTATIONS}
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name}: {m.why}")
        return 0
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(f"error: unknown mutation {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    chosen = [known[n] for n in args.names] if args.names else list(MUTATIONS)
    files = _project_files()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="devstack-mutations-") as scratch:
        root = Path(scratch)
        _copy(files, root)
        for mutation in chosen:
            outcome = run(mutation, root, files)
            outcomes.append(outcome)
            print(f"{outcome.verdict:7} {mutation.name} ({outcome.seconds:.0f}s): {outcome.detail}", flush=True)
    caught = sum(o.verdict == "caught" for o in outcomes)
    print(f"{caught} of {len(outcomes)} mutations caught")
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)

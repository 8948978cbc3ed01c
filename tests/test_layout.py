"""One home per service: no code outside a service's own module decides anything by a service's
name, and adding a service is one module plus one registration line (docs/architecture.md's
walkthrough, followed here literally with a dummy service)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.catalog import SERVICES

ROOT = Path(__file__).resolve().parent.parent
SERVICE_MODULES = ROOT / "devstack" / "services"
# Everything a service's knowledge could leak into: the shared machinery, the components, the
# program, the offline tools and the policy pack.
SCANNED = (ROOT / "devstack", ROOT / "components", ROOT / "tools", ROOT / "policies", ROOT / "__main__.py")
NAMES = frozenset(s.name for s in SERVICES)
# A family is named by its members' common stem: redis-1..3 -> "redis-", redis-exporter-N -> ...
FAMILY_PREFIXES = frozenset(re.sub(r"\d+$", "", name) for name in NAMES if re.search(r"-\d+$", name))
STRING_TESTS = frozenset({"startswith", "endswith", "removeprefix", "removesuffix"})
# Literals that spell a service's name but mean something else, each with why.
NOT_SERVICE_NAMES = {
    ("tools/engine/provider_rules.py", "vault"): "the Pulumi provider package, keying its sources",
    ("tools/bench/suite.py", "redis-benchmark"): "Redis's benchmark client, naming a benchmark group",
}


def _sources() -> Iterator[Path]:
    for place in SCANNED:
        for path in sorted(place.rglob("*.py")) if place.is_dir() else [place]:
            if SERVICE_MODULES not in path.parents:
                yield path


def _names_in(node: ast.AST) -> list[str]:
    """Service names (or family stems) spelled as string constants in this expression."""
    values = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    found = []
    for value in values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            text = value.value
            if text in NAMES or any(text.startswith(prefix) for prefix in FAMILY_PREFIXES):
                found.append(text)
    return found


def name_dispatch(source: str) -> list[tuple[int, str]]:
    """(line, name) for each decision taken on a service's name: compared with (==, !=, in),
    tested as a prefix or suffix, used as a subscript or as a dict key, or matched in a case."""
    hits: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        found: list[str] = []
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                found += _names_in(operand)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in STRING_TESTS:
            for argument in node.args:
                found += _names_in(argument)
        elif isinstance(node, ast.Subscript):
            found += _names_in(node.slice)
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                if key is not None:
                    found += _names_in(key)
        elif isinstance(node, ast.MatchValue):
            found += _names_in(node.value)
        hits += [(getattr(node, "lineno", 0), name) for name in found]
    return hits


def test_no_code_outside_a_service_module_dispatches_on_a_service_name() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {name!r}"
        for path in _sources()
        for line, name in name_dispatch(path.read_text())
        if (str(path.relative_to(ROOT)), name) not in NOT_SERVICE_NAMES
    ]
    assert not offenders, "name dispatch outside devstack/services/:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "snippet",
    [
        'if service.name == "postgres":\n    pass',
        'ok = name != "vault"',
        'ok = service.name in ("mysql", "mongodb")',
        'ok = service.name.startswith("redis-")',
        'ok = name.startswith("redis-exporter-")',
        'owner = SERVICES_BY_NAME["rabbitmq"]',
        'OWNERS = {"loki": 10001}',
        'match name:\n    case "grafana":\n        pass',
    ],
)
def test_the_scan_catches_each_kind_of_name_dispatch(snippet: str) -> None:
    assert name_dispatch(snippet), snippet


def test_the_scan_leaves_messages_and_generic_code_alone() -> None:
    assert not name_dispatch('raise ValueError(f"{service.name} has no port named postgres")')
    assert not name_dispatch("ok = service.tls is not None and service.name in selected")


# --- Adding a service: docs/architecture.md's walkthrough, followed literally ---------------------

GUIDE = ROOT / "docs" / "architecture.md"
COPIED = (
    "__main__.py",
    "Pulumi.yaml",
    "Pulumi.dev.yaml",
    "devstack",
    "components",
    "tools",
    "scripts",
    "apps",
    "policies",
)


def _walkthrough() -> tuple[str, str, str]:
    """(module path, module source, registration line) from docs/architecture.md's "Adding a service"."""
    section = GUIDE.read_text().split("## Adding a service", 1)[1].split("\n## ", 1)[0]
    blocks = [body for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL) if lang == "python"]
    (module,) = [b for b in blocks if b.startswith("# devstack/services/")]
    (registration,) = [b for b in blocks if b.startswith("# devstack/catalog.py")]
    path = module.splitlines()[0].removeprefix("# ").strip()
    (line,) = registration.splitlines()[1:]
    return path, module, line


def _copy_project(target: Path) -> None:
    target.mkdir()
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)


def test_adding_a_service_is_one_module_and_one_registration_line(tmp_path: Path) -> None:
    path, module, line = _walkthrough()
    copy = tmp_path / "devstack"
    _copy_project(copy)
    (copy / path).write_text(module)
    catalog = copy / "devstack" / "catalog.py"
    end_of_services = "\n    )\n)\n"  # where SERVICES' tuple closes
    before = catalog.read_text()
    assert before.count(end_of_services) == 1
    catalog.write_text(before.replace(end_of_services, f"\n{line}{end_of_services}"))
    result = subprocess.run(
        [sys.executable, "-m", "tools.plan", "--set", "profiles=full", "--set", "phase=1", "--json"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resources = json.loads(result.stdout)["resources"]
    containers = {r["name"]: r["inputs"] for r in resources if r["type"] == "docker:index/container:Container"}
    assert "hello" in containers, sorted(containers)
    hello = containers["hello"]
    assert hello["name"] == "dev-hello"
    assert hello["command"] == ["httpd", "-f", "-p", "8080", "-h", "/etc/hello"]
    files = {u["file"]: u["content"] for u in hello["uploads"]}
    assert files["/etc/hello/hello.conf"] == "port = 8080\ntls = dual\n"
    assert "/devstack/tls/server.key" in files  # its certificate, from TlsSupport
    assert [p["external"] for p in hello["ports"]] == [18080]
    certificates = {r["name"] for r in resources if r["type"] == "devstack:pki:ServiceCertificate"}
    assert "hello" in certificates


# --- The mock engine's imports run one way ------------------------------------------------------

ENGINE = ROOT / "tools" / "engine"


def _tools_imports(path: Path) -> set[str]:
    """The tools.* modules a file imports, at its top or inside a function (`from a import b`
    counts as importing a.b when b is a module, else a)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tools"):
            for alias in node.names:
                submodule = ROOT.joinpath(*node.module.split("."), f"{alias.name}.py")
                found.add(f"{node.module}.{alias.name}" if submodule.exists() else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tools")}
    return found


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_engine_imports_run_one_way_and_never_reach_the_commands() -> None:
    modules = {_module(p): p for p in ENGINE.glob("*.py")}
    graph = {name: {m for m in _tools_imports(path) if m in modules and m != name} for name, path in modules.items()}
    # The package's __init__ only re-exports: no engine module may import it (or the circle returns).
    assert not [name for name, edges in graph.items() if "tools.engine" in edges], graph
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, "import cycle: " + " -> ".join([*visiting, name])
        if name in done:
            return
        visiting.append(name)
        for target in graph[name]:
            visit(target)
        visiting.pop()
        done.add(name)

    for name in graph:
        visit(name)
    engine_imports = set().union(*(_tools_imports(p) for p in modules.values()))
    assert all(m.startswith("tools.engine") for m in engine_imports), engine_imports

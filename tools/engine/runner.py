"""Runs __main__.py under Pulumi's mock engine and records what the real engine would receive.

Shared by `tools.plan` and the tests. Each run gets a fresh contextvars context, so one process
can run many programs (a fresh program per test). A `MockState` carried from one run to the
next plays the part of the checkpoint: an unchanged resource keeps its outputs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import gc
import runpy
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
import pulumi.runtime.resource
from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func

from tools.engine.mocks import DevstackMocks, MockState
from tools.engine.values import Secret, from_wire, to_wire, unwrap

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
MAIN = PROJECT_DIR / "__main__.py"


@dataclass
class ResourceRecord:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    dependencies: list[str]
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    options: dict[str, Any]
    id: str = ""
    # input property -> the URNs its value came from, every input listed as the SDK sends them (the
    # engine falls back to "every property depends on every dependency" only when none is sent)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class PlanRun:
    project: str
    stack: str
    config: dict[str, str]
    resources: list[ResourceRecord]
    outputs: dict[str, Any]
    state: MockState = field(repr=False, default_factory=MockState)

    def by_type(self, type_token: str) -> list[ResourceRecord]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str) -> ResourceRecord:
        matches = [r for r in self.resources if r.type == type_token and r.name == name]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} resources of type {type_token} named {name}")
        return matches[0]


def _struct(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True) if message else {}


def _alias_text(alias: Any) -> str:
    data = _struct(alias)
    if "urn" in data:
        return str(data["urn"])
    return ",".join(f"{k}={v}" for k, v in sorted(data.get("spec", data).items()))


class RecordingMonitor(MockMonitor):
    """MockMonitor that keeps the whole registration: options, dependencies and secrets."""

    def __init__(self, mocks: DevstackMocks) -> None:
        super().__init__(mocks)
        self.devstack_mocks = mocks
        self.records: list[ResourceRecord] = []
        self._by_urn: dict[str, ResourceRecord] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return make_urn(pulumi.get_stack(), pulumi.get_project(), parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        from pulumi.runtime.proto import resource_pb2

        urn = self.make_urn(request.parent, request.type, request.name)
        inputs = from_wire(_struct(request.object))
        custom = bool(request.custom)
        record = ResourceRecord(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=custom,
            provider=request.provider or (_default_provider(request.type) if custom else ""),
            dependencies=sorted(set(request.dependencies)),
            property_dependencies={
                key: sorted(set(deps.urns)) for key, deps in sorted(request.propertyDependencies.items())
            },
            inputs=inputs,
            outputs={},
            options={
                "protect": bool(request.protect),
                "retain_on_delete": bool(request.retainOnDelete),
                "delete_before_replace": bool(request.deleteBeforeReplace),
                "ignore_changes": list(request.ignoreChanges),
                "aliases": [_alias_text(a) for a in request.aliases] + list(request.aliasURNs),
                "additional_secret_outputs": list(request.additionalSecretOutputs),
                "replace_on_changes": list(request.replaceOnChanges),
            },
        )
        if request.type == ROOT_STACK_TYPE:
            self._keep(record)
            return resource_pb2.RegisterResourceResponse(urn=urn)
        id_, state = self.devstack_mocks.register(urn, request.type, request.name, inputs, custom)
        secret_outputs = set(request.additionalSecretOutputs)
        outputs = {
            k: Secret(unwrap(v)) if (k in secret_outputs and not isinstance(v, Secret)) else v for k, v in state.items()
        }
        record.id, record.outputs = id_, outputs
        self._keep(record)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=serialized(outputs))

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        from google.protobuf import empty_pb2

        record = self._by_urn.get(request.urn)
        if record is not None:
            record.outputs = from_wire(_struct(request.outputs))
        return empty_pb2.Empty()

    def _keep(self, record: ResourceRecord) -> None:
        self.records.append(record)
        self._by_urn[record.urn] = record


def serialized(outputs: dict[str, Any]) -> Any:
    """The outputs as the engine sends them back. The mocks answer with plain values, which the
    SDK's serializer turns into a Struct without waiting on anything, so it is run to its end in
    one step: no event loop of its own per call (the SDK's `_sync_await`)."""
    serializing = rpc.serialize_properties(to_wire(outputs), {})
    try:
        serializing.send(None)
    except StopIteration as done:
        return done.value
    serializing.close()
    raise RuntimeError("a mock answered with a value to wait for; mocks answer with plain values")


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """The run's executor for the SDK's monitor calls: each call runs at once, on the program's
    thread. The SDK hands every registration to a thread pool because a real engine answers over
    gRPC; the mocks answer in Python, so the threads only took turns at the interpreter lock,
    each with an event loop of its own. (asyncio takes only a ThreadPoolExecutor; no thread is
    ever started.)"""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # as the pool would: the error reaches the awaiting registration
            future.set_exception(error)
        return future


def make_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A resource's URN as the real engine forms it: its type qualified by its parent's whole
    qualified type, except the root stack's. (The SDK's mock monitor keeps only the parent's
    last type and qualifies top-level resources with the stack's, so its URNs matched no real
    one and an alias could never find its old resource.)"""
    if parent:
        parent_type = parent.split("::")[2]
        if parent_type != ROOT_STACK_TYPE:
            type_ = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def _default_provider(type_token: str) -> str:
    package = type_token.split(":", 1)[0]
    return f"pulumi:providers:{package}::default"


async def _resolve(value: Any) -> Any:
    output = pulumi.Output.from_input(value)
    resolved = await output.future(with_unknowns=True)
    plain = from_wire(resolved) if resolved is not None else None
    return Secret(plain) if await output.is_secret() else plain


def _execute(main: Path) -> None:
    runpy.run_path(str(main), run_name="__main__")


def _run_in_context(config: Mapping[str, str], stack: str, project: str, state: MockState, main: Path) -> PlanRun:
    loop = asyncio.new_event_loop()
    loop.set_default_executor(InlineExecutor())
    asyncio.set_event_loop(loop)
    mocks = DevstackMocks(state)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(dict(config), [])
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    _empty_tracking()
    root = get_root_resource()
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    try:
        loop.run_until_complete(run_pulumi_func(lambda: _execute(main)))
        stack_outputs: dict[str, Any] = {}
        for name, value in getattr(root, "outputs", {}).items():
            stack_outputs[name] = loop.run_until_complete(_resolve(value))
    except BaseException:
        loop.set_exception_handler(_consequences_unlogged)
        raise
    finally:
        _cancel_pending(loop)
        loop.close()
    return PlanRun(project, stack, dict(config), _tree_order(monitor.records), stack_outputs, state)


def _consequences_unlogged(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A failed run raises its error once; the thousands of futures that failed with it (each
    dependent resource) would each be logged, chained traceback and all, when collected: seconds
    of formatting and a flood in any captured log."""
    if not str(context.get("message", "")).endswith("exception was never retrieved"):
        loop.default_exception_handler(context)


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """A run that failed leaves tasks that never ran; they are cancelled and let finish on their
    own loop (as asyncio.run does), not left for the collector to find never awaited."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _empty_tracking() -> None:
    """The SDK tracks every pending Output, and its outstanding RPCs, in SETTINGS; set_mocks
    sets neither, and a fresh context reads the process-wide default, so every run shares one
    set. A run that fails leaves its failed tasks (on its closed event loop) there, and the next
    run would wait on them ("Event loop is closed"): each run starts by emptying them. (Emptied,
    not replaced: a new set per run kept each earlier run's graph alive, 1.3x slower.)"""
    settings = pulumi.runtime.settings
    settings._get_rpc_manager().clear()
    settings.SETTINGS.outputs.clear()  # pyright: ignore[reportAttributeAccessIssue]  (a context property)


def _tree_order(records: list[ResourceRecord]) -> list[ResourceRecord]:
    """Parents before children, siblings by type and name: registrations arrive as their inputs
    resolve, not in the program's order, and reviews need a stable order."""
    children: dict[str, list[ResourceRecord]] = {}
    for record in records:
        children.setdefault(record.parent, []).append(record)
    ordered: list[ResourceRecord] = []

    def walk(parent: str) -> None:
        for record in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            ordered.append(record)
            walk(record.urn)

    walk("")
    return ordered


def run_program(
    config: Mapping[str, str],
    stack: str = "dev",
    project: str = "devstack",
    state: MockState | None = None,
    main: Path = MAIN,
) -> PlanRun:
    """Run the program once, in a context of its own; errors propagate (ConfigError -> RunError)."""
    state = state if state is not None else MockState()
    context = contextvars.Context()
    with _no_source_positions(), _collector_paused():
        return context.run(_run_in_context, config, stack, project, state, main)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A run allocates some 400,000 objects (futures, Outputs, protobuf messages) that live until
    it ends, so the cyclic collector, triggered every 700 allocations, walks them over and over
    for nothing: about a third of a run's time. It is paused for the run; the young objects are
    collected once, after it, when it resumes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _no_source_positions() -> Iterator[None]:
    """The SDK walks and formats the whole Python stack for every resource it registers (about a
    sixth of a plan's time), only to tell the real engine where in the program the resource was
    declared. The mocks never read it and no plan shows it, so the run sends an empty trace."""
    original = getattr(pulumi.runtime.resource, "_get_stack_trace", None)
    if original is None:  # an SDK without it: nothing to skip
        yield
        return
    pulumi.runtime.resource._get_stack_trace = source_pb2.StackTrace  # type: ignore[attr-defined]
    try:
        yield
    finally:
        pulumi.runtime.resource._get_stack_trace = original  # type: ignore[attr-defined]

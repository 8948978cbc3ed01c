"""The mock engine's own machinery (tools/engine/runner.py): the SDK's monitor calls run on the
program's thread, and a mock's answer is serialized without an event loop of its own."""

from __future__ import annotations

import asyncio
import gc

import pulumi
import pytest

from tools.engine.runner import InlineExecutor, serialized


def test_the_executor_runs_each_call_at_once_and_keeps_its_error() -> None:
    """An error stays with its call's future, as in the SDK's thread pool, for the awaiting
    registration to raise."""
    executor = InlineExecutor()
    assert executor.submit(lambda a, b: a + b, 1, b=2).result(timeout=0) == 3
    failed = executor.submit(int, "not a number")
    assert isinstance(failed.exception(timeout=0), ValueError)


def test_an_answer_that_would_wait_is_refused() -> None:
    loop = asyncio.new_event_loop()
    try:
        pending = loop.create_future()  # nothing ever resolves it
        with pytest.raises(RuntimeError, match="plain values"):
            serialized({"value": pending})
        assert serialized({"value": "plain"}) == serialized({"value": "plain"})
    finally:
        loop.close()


def test_a_plain_answer_is_the_struct_the_engine_would_send() -> None:
    struct = serialized({"name": "x", "ports": [1, 2], "nested": {"on": True}})
    assert dict(struct) == {"name": "x", "ports": [1.0, 2.0], "nested": {"on": True}}
    assert pulumi.runtime.rpc.deserialize_properties(struct) == {"name": "x", "ports": [1, 2], "nested": {"on": True}}


def test_a_run_after_a_refused_resource_plans_as_usual(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A mock that refuses a resource fails that run only: the SDK's set of tracked outputs is
    a process-wide default outside a context that sets it, and the failed run's tasks (on its
    closed event loop) must not reach the next run ("Event loop is closed")."""
    from tools.engine import mocks, run_program

    config = {"devstack:phase": "1", "devstack:profiles": "minimal"}
    key = next(token for token in mocks.HANDLERS if token.startswith("tls:index/privateKey"))

    def refuse(ctx: mocks.MockContext) -> tuple[str, dict]:
        raise ValueError("refused by this test's mock")

    with monkeypatch.context() as patched:
        patched.setitem(mocks.HANDLERS, key, refuse)
        with pytest.raises(Exception, match="refused by this test's mock"):
            run_program(config)
    after = run_program(config)
    assert any(r.type == key for r in after.resources)
    # the refusal is raised once, not logged again for every future that failed with it
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]

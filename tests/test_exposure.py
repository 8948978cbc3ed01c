"""A bind address beyond loopback needs an explicit acknowledgement, and the plan warns about it."""

from __future__ import annotations

import json

import pytest

from devstack.errors import ConfigError
from devstack.settings import exposure_warning, load_settings
from tools.plan import main


def load(**values: object):
    return load_settings({f"devstack:{k}": v for k, v in values.items()}, stack="test")


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.168.1.20", "10.0.5.5", "::ffff:127.0.0.1"])
def test_a_non_loopback_address_is_refused_without_the_acknowledgement(address: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(bindAddress=address)
    message = str(caught.value)
    assert message.startswith("devstack:bindAddress: "), message
    assert "devstack:exposeBeyondLoopback" in message
    assert "\n" not in message
    with pytest.raises(ConfigError):
        load(bindAddress=address, exposeBeyondLoopback="false")


@pytest.mark.parametrize("acknowledgement", ["true", True, "True"])
def test_the_acknowledgement_lets_it_through_with_a_warning(acknowledgement: object) -> None:
    settings = load(bindAddress="0.0.0.0", exposeBeyondLoopback=acknowledgement)
    assert settings.bind_address == "0.0.0.0"
    assert settings.expose_beyond_loopback is True
    warning = exposure_warning(settings)
    assert warning is not None
    assert warning.startswith("warning: devstack:bindAddress is 0.0.0.0")
    assert "exposeBeyondLoopback" in warning


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1"])
def test_loopback_needs_nothing_and_warns_nothing(address: str) -> None:
    settings = load(bindAddress=address)
    assert exposure_warning(settings) is None
    # Acknowledging an exposure that does not happen is harmless, and still silent.
    assert exposure_warning(load(bindAddress=address, exposeBeyondLoopback="true")) is None


def test_the_acknowledgement_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError) as caught:
        load(exposeBeyondLoopback="perhaps")
    assert str(caught.value) == "devstack:exposeBeyondLoopback: must be true or false, got 'perhaps'"


def test_the_plan_refuses_it_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--set", "profiles=minimal", "--set", "bindAddress=::"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: devstack:bindAddress: :: is not a loopback address")
    assert "devstack:exposeBeyondLoopback" in lines[0]


def test_the_plan_warns_whenever_it_is_acknowledged(capsys: pytest.CaptureFixture[str], cached_commands: None) -> None:
    overrides = ["--set", "profiles=minimal", "--set", "bindAddress=0.0.0.0", "--set", "exposeBeyondLoopback=true"]
    assert main(["--json", *overrides]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # the warning stays out of the JSON document
    assert captured.err.count("warning: devstack:bindAddress is 0.0.0.0") == 1
    assert main(["diff", "--from", "phase=0", "--to", "phase=1", *overrides]) == 0
    assert capsys.readouterr().err.count("warning:") == 1  # two plans, one warning
    assert main(["--set", "profiles=minimal"]) == 0
    assert capsys.readouterr().err == ""

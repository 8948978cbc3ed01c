"""Reads the whole stack config from the Pulumi runtime, so unknown keys can be rejected."""

from __future__ import annotations

import pulumi.runtime.config as runtime_config


def stack_config() -> dict[str, object]:
    # The CLI hands config over in PULUMI_CONFIG; Automation API and mocks set it in-process.
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}

"""The one error type that stops the program before any resource is registered."""

from __future__ import annotations

PROJECT = "devstack"


class ConfigError(ValueError):
    """Bad stack configuration: names the key and what is allowed, in one line."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key if ":" in key else f"{PROJECT}:{key}"
        self.message = message
        super().__init__(f"{self.key}: {message}")


class PolicyFileError(ValueError):
    """A reviewed policy file (policies/) that does not parse: names the file and line."""

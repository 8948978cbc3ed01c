"""What a server's container needs for a TLS mode beyond its certificate files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from devstack.model import Healthcheck


@dataclass(frozen=True)
class ServerTls:
    args: tuple[str, ...] = ()  # appended to the command the container runs
    # Replaces the image's own CMD, for servers with no entrypoint wrapper whose TLS switches are
    # command-line flags (the image's default arguments have to be restated with them).
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)  # extra config files to upload
    healthcheck: Healthcheck | None = None  # a probe that still works in this mode

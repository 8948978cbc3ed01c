"""One table from rollout phase to features; components ask for features, never phases."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from devstack.errors import ConfigError


class TlsMode(StrEnum):
    OFF = "off"  # phase 0: the rollback target, no certificate anywhere
    DUAL = "dual"  # TLS offered, plaintext still accepted while clients migrate
    REQUIRED = "required"  # plaintext refused, clients verify the CA


@dataclass(frozen=True)
class Features:
    approle: bool  # per-container AppRole identity instead of the root token
    tls: TlsMode
    segmentation: bool  # tier networks instead of one flat bridge
    backups: bool
    alerting: bool
    tuning: bool
    strict: bool  # the end state: nothing optional left open
    # Least privilege in every container (devstack.hardening): the strict end state's first item,
    # a feature of its own so it can be tried, or rolled back, alone.
    hardening: bool

    def enabled(self) -> frozenset[str]:
        """The boolean features that are on (Service.feature names one)."""
        return frozenset(name for name, value in self.as_dict().items() if value is True)

    def as_dict(self) -> dict[str, bool | str]:
        return {
            f.name: (v.value if isinstance(v := getattr(self, f.name), TlsMode) else v)
            for f in dataclasses.fields(self)
        }


MAX_PHASE = 4

PHASE_FEATURES: Mapping[int, Features] = {
    0: Features(False, TlsMode.OFF, False, False, False, False, False, False),
    1: Features(True, TlsMode.DUAL, True, False, False, False, False, False),
    2: Features(True, TlsMode.DUAL, True, True, True, False, False, False),
    3: Features(True, TlsMode.DUAL, True, True, True, True, False, False),
    4: Features(True, TlsMode.REQUIRED, True, True, True, True, True, True),
}

_BOOLEAN_WORDS = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}


def _parse_feature_value(name: str, raw: str) -> bool | TlsMode:
    if name == "tls":
        try:
            return TlsMode(raw.lower())
        except ValueError:
            allowed = ", ".join(mode.value for mode in TlsMode)
            raise ConfigError("features", f"tls must be one of {allowed}, got '{raw}'") from None
    if raw.lower() not in _BOOLEAN_WORDS:
        raise ConfigError("features", f"{name} must be true or false, got '{raw}'")
    return _BOOLEAN_WORDS[raw.lower()]


def feature_names() -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(Features))


def resolve_features(phase: int, overrides: Mapping[str, str]) -> Features:
    """The phase's row with per-feature overrides (for sub-steps like 1a, 1b, 1c)."""
    base = PHASE_FEATURES[phase]
    known = feature_names()
    changes: dict[str, bool | TlsMode] = {}
    for name, raw in overrides.items():
        if name not in known:
            raise ConfigError("features", f"unknown feature '{name}'; allowed: {', '.join(known)}")
        changes[name] = _parse_feature_value(name, raw)
    features = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
    if features.strict and not features.approle:
        # strict retires the root token: every container must have an identity of its own
        raise ConfigError("features", "strict needs approle=true (strict revokes the root token)")
    return features

"""Vault ACL policies evaluated offline: a real HCL parser and Vault's matching rules.

Rules applied (Vault's documented behaviour):
- a path is exact, ends in `*` (prefix glob), and/or has `+` segments (one segment each);
- policies attached to one token are merged: the same path's capabilities are joined;
- of all the paths that match a request, only the most specific one counts (Vault's priority
  rules, below), and a `deny` there refuses everything.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import hcl2

CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"})


class PolicyError(ValueError):
    pass


def _unquote(text: str) -> str:
    text = str(text)
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


@dataclass(frozen=True)
class Rule:
    path: str
    capabilities: frozenset[str]


@functools.lru_cache(maxsize=256)
def parse_policy(text: str, name: str = "policy") -> tuple[Rule, ...]:
    """The policy's rules (immutable, so one parse serves every caller: the HCL parser takes a
    tenth of a second for the provisioner's policy, and each access check reads every policy)."""
    try:
        document = hcl2.loads(text)
    except Exception as error:
        raise PolicyError(f"{name}: not valid HCL: {error}") from None
    rules = []
    for block in document.get("path", []):
        for raw_path, body in block.items():
            path = _unquote(raw_path)
            capabilities = frozenset(_unquote(c) for c in body.get("capabilities", []))
            unknown = capabilities - CAPABILITIES
            if unknown:
                raise PolicyError(f"{name}: path {path!r} has unknown capabilities {sorted(unknown)}")
            if "*" in path[:-1]:
                raise PolicyError(f"{name}: path {path!r}: `*` may only end a path")
            rules.append(Rule(path, capabilities))
    unexpected = set(document) - {"path", "__comments__"}
    if unexpected:
        raise PolicyError(f"{name}: unexpected blocks {sorted(unexpected)}")
    return tuple(rules)


def merge(policies: Iterable[Iterable[Rule]]) -> dict[str, frozenset[str]]:
    """One token's ACL: every path of its policies, capabilities joined."""
    acl: dict[str, frozenset[str]] = {}
    for rules in policies:
        for rule in rules:
            acl[rule.path] = acl.get(rule.path, frozenset()) | rule.capabilities
    return acl


def matches(pattern: str, path: str) -> bool:
    glob = pattern.endswith("*")
    stem = pattern[:-1] if glob else pattern
    pattern_parts, path_parts = stem.split("/"), path.split("/")
    if glob:
        # The last stem segment is a prefix of the path's segment at that position.
        if len(path_parts) < len(pattern_parts):
            return False
        head, last = pattern_parts[:-1], pattern_parts[-1]
        candidate = path_parts[: len(head)]
        rest = "/".join(path_parts[len(head) :])
        return _segments_match(head, candidate) and rest.startswith(last)
    return len(pattern_parts) == len(path_parts) and _segments_match(pattern_parts, path_parts)


def _segments_match(pattern: list[str], path: list[str]) -> bool:
    return all(p in ("+", s) for p, s in zip(pattern, path, strict=True))


def _first_wildcard(pattern: str) -> int:
    positions = [i for i, c in enumerate(pattern) if c in "+*"]
    return positions[0] if positions else len(pattern) + 1


def _priority(pattern: str) -> tuple[int, int, int, int, str]:
    """Higher sorts as more specific, per Vault's rules, in order: the first wildcard comes
    later; no trailing glob; fewer `+` segments; longer; lexicographically larger."""
    plus_segments = sum(1 for part in pattern.split("/") if part == "+")
    return (_first_wildcard(pattern), 0 if pattern.endswith("*") else 1, -plus_segments, len(pattern), pattern)


def capabilities(acl: Mapping[str, frozenset[str]], path: str) -> frozenset[str]:
    """What the ACL allows on `path` (empty: nothing; a deny counts as nothing)."""
    candidates = [p for p in acl if matches(p, path)]
    if not candidates:
        return frozenset()
    chosen = acl[max(candidates, key=_priority)]
    return frozenset() if "deny" in chosen else chosen


def allows(acl: Mapping[str, frozenset[str]], path: str, capability: str) -> bool:
    return capability in capabilities(acl, path)

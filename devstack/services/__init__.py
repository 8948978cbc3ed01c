"""One module per service (or family of alike services): everything devstack knows about it.

devstack.catalog registers each entry with one line, `services.<module>.<ENTRY>,`: a module is
imported the first time the catalog names it (PEP 562), so a new module needs no import line.
See docs/architecture.md, "Adding a service".
"""

from __future__ import annotations

import importlib
from types import ModuleType


def __getattr__(name: str) -> ModuleType:
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"no service module devstack/services/{name}.py") from None

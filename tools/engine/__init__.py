"""The mock engine the offline commands and the tests run the program on.

Imports run one way: runner (runs __main__.py, records every registration) -> mocks (each
provider's answers) -> tls_mocks and provider_rules -> context and values. The user-facing
commands in tools/ (plan, diff, access, certs, rollback) use this package; nothing here
imports them.
"""

from tools.engine.runner import PROJECT_DIR, PlanRun, ResourceRecord, make_urn, run_program
from tools.engine.values import Secret, masked, unwrap

__all__ = ["PROJECT_DIR", "PlanRun", "ResourceRecord", "Secret", "make_urn", "masked", "run_program", "unwrap"]

"""The CrossGuard pack, as the Pulumi CLI runs it (`pulumi preview --policy-pack policies/crossguard`)."""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

# The CLI runs this folder as a program; the rules live in the repository beside it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from policies.crossguard.pack import PACK_NAME, build_policies

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=build_policies())

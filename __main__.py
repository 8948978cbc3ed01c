"""devstack: settings in, one top-level component, exports out."""

import pulumi

from components.platform import Platform
from devstack import clock
from devstack.credentials import MANAGEMENT
from devstack.errors import ConfigError, PolicyFileError
from devstack.monitoring import rule_files
from devstack.runtime_config import stack_config
from devstack.settings import load_settings

try:
    settings = load_settings(stack_config(), stack=pulumi.get_stack(), project=pulumi.get_project())
    clock.now()  # a bad DEVSTACK_NOW is a one-line error too
    rule_files()  # so is an alert rule file that does not parse
except (ConfigError, PolicyFileError) as error:
    # RunError ends the program with this one line, no traceback, before any resource exists.
    raise pulumi.RunError(str(error)) from None

platform = Platform("devstack", settings)

pulumi.export("phase", settings.phase)
pulumi.export("profiles", sorted(p.value for p in settings.profiles))
pulumi.export("features", settings.features.as_dict())
pulumi.export("endpoints", platform.endpoints)
pulumi.export("networks", platform.topology.names)
pulumi.export("vaultAddress", platform.vault.address)
pulumi.export("vaultRecoveryFile", settings.vault_init_file)
if platform.vault.root_token is not None:
    # At strict there is none: the bootstrap revokes it (docs/vault.md, "Retiring the root token").
    pulumi.export("vaultRootToken", platform.vault.root_token)
if MANAGEMENT in platform.identities:
    pulumi.export("managementRoleId", platform.identities[MANAGEMENT].role_id)
    pulumi.export("managementSecretId", platform.identities[MANAGEMENT].secret_id)
if platform.certificates:
    # Local clients (psql, redis-cli, a browser) trust the platform with this bundle.
    pulumi.export("caBundle", platform.authority.chain_pem)
    pulumi.export("vaultCaFile", settings.vault_ca_file)  # the same CA, as the file Vault's clients here use

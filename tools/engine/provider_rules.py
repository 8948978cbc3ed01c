"""Replace-on-change / in-place-update / secret-output rules for the provider
resource types devstack uses, in Pulumi engine (camelCase) property names.

Plain data only. Every entry was read from the provider source (the Terraform
schema's ForceNew / RequiresReplace, the Update function, Sensitive) and then
checked against the input property lists of the installed Python SDKs
(/work/main/.venv/.../pulumi_*). Where the installed SDK is newer than the
source I could read, the gap is recorded in UNVERIFIED and in SOURCES.

How to read it:
  REPLACE_ON_CHANGE[t]  changing any of these inputs gives a replacement.
  UPDATABLE[t]          changing these inputs gives an in-place update (the
                        provider's Diff reports an update, not a replace).
                        Some of these only change state; see STATE_ONLY_UPDATES.
  SECRET_OUTPUTS[t]     properties the provider marks Sensitive/secret. The
                        installed SDK also passes them as
                        additional_secret_outputs.
  An input that is in neither set has no verified rule. Besides the
  write-only inputs (see WRITE_ONLY_INPUTS), the only such input is
  Container.deviceCgroupRules (see UNVERIFIED).

Extra tables (also plain data) cover the cases the three sets cannot express:
  NESTED_IN_PLACE, CONDITIONAL, STATE_ONLY_UPDATES, WRITE_ONLY_INPUTS,
  SDK_INJECTED_REPLACE_ON_CHANGES, DELETE_BEFORE_REPLACE, UNVERIFIED, SOURCES.
"""

# ---------------------------------------------------------------------------
# docker (pulumi-docker 5.2.0; bridged SDKv2 provider kreuzwerker/terraform-provider-docker)
# ---------------------------------------------------------------------------

# docker:index/container:Container
#   Source: kreuzwerker/terraform-provider-docker@v4.5.0 (5074970c, the upstream
#   submodule that pulumi-docker v5.1.0 pins) internal/provider/resource_docker_container.go
#   (schema, ForceNew flags) and resource_docker_container_funcs.go
#   (resourceDockerContainerUpdate). That function applies only "restart",
#   "max_retry_count", "cpu_shares", "memory", "memory_reservation", "cpu_set",
#   "memory_swap", "device_read_bps", "device_read_iops", "device_write_bps",
#   "device_write_iops" (through the Docker ContainerUpdate API), plus
#   must_run false->true (starts the container). Every other non-ForceNew
#   attribute only changes state. pulumi-docker provider/resources.go sets
#   DeleteBeforeReplace: true for docker_container.
_DOCKER_CONTAINER_REPLACE = frozenset(
    {
        "capabilities",
        "cgroupParent",
        "cgroupnsMode",
        "command",
        "cpus",
        "deviceRequests",
        "devices",
        "dns",
        "dnsOpts",
        "dnsSearches",
        "domainname",
        "entrypoints",
        "envs",
        "gpus",
        "groupAdds",
        "hostname",
        "hosts",
        "image",
        "ipcMode",
        "labels",
        "logDriver",
        "logOpts",
        "mounts",
        "name",
        "networkMode",
        "networksAdvanced",
        "pidMode",
        "platform",
        "ports",
        "privileged",
        "publishAllPorts",
        "readOnly",
        "runtime",
        "securityOpts",
        "shmSize",
        "stdinOpen",
        "stopSignal",
        "stopTimeout",
        "storageOpts",
        "sysctls",
        "tty",
        "ulimits",
        "uploads",
        "user",
        "usernsMode",
        "volumes",
        "workingDir",
    }
)
_DOCKER_CONTAINER_UPDATE_APPLIED = frozenset(
    {
        # sent to the daemon by resourceDockerContainerUpdate
        "restart",
        "maxRetryCount",
        "cpuShares",
        "memory",
        "memoryReservation",
        "cpuSet",
        "memorySwap",
        "deviceReadBps",
        "deviceReadIops",
        "deviceWriteBps",
        "deviceWriteIops",
        "mustRun",  # only false->true does something (starts the container)
    }
)
_DOCKER_CONTAINER_UPDATE_STATE_ONLY = frozenset(
    {
        # not ForceNew, and not handled by the Update function
        "attach",
        "containerReadRefreshTimeoutMilliseconds",
        "cpuPeriod",
        "cpuQuota",
        "destroyGraceSeconds",
        "healthcheck",
        "init",
        "logs",
        "removeVolumes",
        "rm",
        "start",
        "tmpfs",
        "wait",
        "waitTimeout",
    }
)

# docker:index/network:Network
#   Source: kreuzwerker/terraform-provider-docker@v4.5.0 internal/provider/resource_docker_network.go
#   The resource has no UpdateContext, so every argument is ForceNew.

# docker:index/volume:Volume
#   Source: kreuzwerker/terraform-provider-docker@v4.5.0 internal/provider/resource_docker_volume.go
#   (resourceDockerVolumeUpdate only handles "cluster.availability").
#   "cluster" is not ForceNew at the top level, but every sub-field except
#   availability is ForceNew (see NESTED_IN_PLACE).

# docker:index/remoteImage:RemoteImage   (Terraform docker_image)
#   Source: kreuzwerker/terraform-provider-docker@v4.5.0 internal/provider/resource_docker_image.go,
#   resource_docker_image_funcs.go (resourceDockerImageUpdate only re-reads
#   the image). "build" is not ForceNew at the top level, but almost every
#   sub-field is (see NESTED_IN_PLACE).

# ---------------------------------------------------------------------------
# tls (pulumi-tls 5.6.2; bridged plugin-framework provider hashicorp/terraform-provider-tls)
# ---------------------------------------------------------------------------

# tls:index/privateKey:PrivateKey
#   Source: hashicorp/terraform-provider-tls@d72d90e1 internal/provider/resource_private_key.go
#   algorithm/rsa_bits/ecdsa_curve use RequiresReplace(); the private_key_* outputs are Sensitive.

# tls:index/selfSignedCert:SelfSignedCert
#   Source: hashicorp/terraform-provider-tls@d72d90e1 internal/provider/resource_self_signed_cert.go,
#   common.go (requireReplaceIfStateContainsPEMString), common_cert.go
#   (modifyPlanIfCertificateReadyForRenewal), attribute_plan_modifier_bool/default_value.go.
#   Only early_renewal_hours has no RequiresReplace. The write-only fields
#   (privateKeyPemWo/privateKeyPemWoVersion) come from upstream PR #789
#   (merged July 2026), which is newer than the mirrored source. They are
#   taken from that PR (its plancheck expects a Replace on a version bump) and
#   from the installed SDK docstring ("increment it to force the certificate
#   to be re-issued").

# tls:index/certRequest:CertRequest
#   Source: hashicorp/terraform-provider-tls@d72d90e1 internal/provider/resource_cert_request.go
#   (+ PR #789 for the *Wo fields). Every input requires replacement.

# tls:index/locallySignedCert:LocallySignedCert
#   Source: hashicorp/terraform-provider-tls@d72d90e1 internal/provider/resource_locally_signed_cert.go
#   (+ PR #789 for caPrivateKeyPemWo/caPrivateKeyPemWoVersion). Only
#   early_renewal_hours is updatable in place.

# ---------------------------------------------------------------------------
# random (pulumi-random 4.21.4; bridged plugin-framework provider hashicorp/terraform-provider-random)
# ---------------------------------------------------------------------------

# random:index/randomPassword:RandomPassword / random:index/randomString:RandomString
#   Source: hashicorp/terraform-provider-random@f8d869dc (v3.9.0, the commit
#   pulumi-random's shim pins) internal/provider/resource_password.go
#   (passwordSchemaV3), resource_string.go (stringSchemaV3),
#   internal/planmodifiers/map/mapplanmodifiers.go (keepers),
#   internal/planmodifiers/string/stringplanmodifier.go (override_special).
#   Every input requires replacement. result/bcrypt_hash are Sensitive on
#   random_password only. random_string.result is not Sensitive.

# random:index/randomId:RandomId
#   Source: hashicorp/terraform-provider-random@f8d869dc internal/provider/resource_id.go
#   keepers/byte_length/prefix require replacement. No Sensitive attributes.

# ---------------------------------------------------------------------------
# vault (pulumi-vault 7.14.0; bridged SDKv2 provider hashicorp/terraform-provider-vault)
# ---------------------------------------------------------------------------
# Every vault resource gets "namespace" (Optional, ForceNew) from
# UpdateSchemaResource() -> provider.GetNamespaceSchema()
# (vault/provider.go, internal/provider/schema_util.go @31447510).

# vault:index/mount:Mount
#   Source: hashicorp/terraform-provider-vault@31447510 vault/resource_mount.go
#   (getMountSchema, updateMount). Changing "path" remounts in place
#   (Sys().Remount); this resource has no disable_remount / CustomizeDiff.

# vault:kv/secretV2:SecretV2
#   Source: hashicorp/terraform-provider-vault@31447510 vault/resource_kv_secret_v2.go
#   (Create and Update are both kvSecretV2Write). data_json and data are
#   Sensitive. data_json_wo is WriteOnly. data_json_wo_version is NOT
#   ForceNew: bumping it is an in-place rewrite. This is the opposite of tls.

# vault:index/policy:Policy
#   Source: hashicorp/terraform-provider-vault@31447510 vault/resource_policy.go

# vault:index/authBackend:AuthBackend
#   Source: hashicorp/terraform-provider-vault@31447510 vault/resource_auth_backend.go,
#   vault/auth_mount.go (tune), internal/provider/schema_util.go
#   (MustAddMountMigrationSchema -> disable_remount),
#   vault/resource_aws_secret_backend.go (getMountCustomizeDiffFunc: ForceNew
#   on path only when remount is unavailable or disable_remount=true).

# vault:appRole/authBackendRole:AuthBackendRole
#   Source: hashicorp/terraform-provider-vault@31447510 vault/resource_approle_auth_backend_role.go,
#   vault/auth_token.go (addTokenFields: token_* and alias_metadata, none ForceNew).

# vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId
#   Source: hashicorp/terraform-provider-vault@31447510 vault/resource_approle_auth_backend_role_secret_id.go
#   There is no UpdateContext, so every argument is ForceNew. secret_id and
#   wrapping_token are Sensitive.

# ---------------------------------------------------------------------------
# command (pulumi-command 1.2.1; native pulumi-go-provider "infer" provider)
# ---------------------------------------------------------------------------
# command:local:Command / command:remote:Command
#   Source: pulumi/pulumi-command@v1.2.1 provider/pkg/provider/common/inputs.go
#   (Triggers tagged provider:"replaceOnChanges"), local/commandController.go and
#   remote/commandController.go (Update runs `update`, or else `create`, on ANY
#   input change), remote/command.go (Connection tagged provider:"secret").
#   There is no custom Diff, so pulumi/pulumi-go-provider@v1.3.0
#   infer/resource.go diff() applies: a change to a replaceOnChanges property
#   is a replace and any other input change is an update. The generated Python SDK also
#   injects ResourceOptions(replace_on_changes=["triggers[*]"]).

REPLACE_ON_CHANGE: dict[str, frozenset[str]] = {
    # docker
    "docker:index/container:Container": _DOCKER_CONTAINER_REPLACE,
    "docker:index/network:Network": frozenset(
        {
            "attachable",
            "driver",
            "ingress",
            "internal",
            "ipamConfigs",
            "ipamDriver",
            "ipamOptions",
            "ipv6",
            "labels",
            "name",
            "options",
        }
    ),
    "docker:index/volume:Volume": frozenset(
        {
            "driver",
            "driverOpts",
            "labels",
            "name",
            "cluster",  # every sub-field except availability; see NESTED_IN_PLACE
        }
    ),
    "docker:index/remoteImage:RemoteImage": frozenset(
        {
            "name",
            "platform",
            "pullTriggers",
            "triggers",
            "build",  # most sub-fields; see NESTED_IN_PLACE
        }
    ),
    # tls
    "tls:index/privateKey:PrivateKey": frozenset(
        {
            "algorithm",
            "ecdsaCurve",
            "rsaBits",
        }
    ),
    "tls:index/selfSignedCert:SelfSignedCert": frozenset(
        {
            "allowedUses",
            "dnsNames",
            "ipAddresses",
            "isCaCertificate",
            "maxPathLength",
            "privateKeyPem",
            "privateKeyPemWoVersion",
            "setAuthorityKeyId",
            "setSubjectKeyId",
            "subject",
            "uris",
            "validityPeriodHours",
        }
    ),
    "tls:index/certRequest:CertRequest": frozenset(
        {
            "dnsNames",
            "ipAddresses",
            "privateKeyPem",
            "privateKeyPemWoVersion",
            "subject",
            "uris",
        }
    ),
    "tls:index/locallySignedCert:LocallySignedCert": frozenset(
        {
            "allowedUses",
            "caCertPem",
            "caPrivateKeyPem",
            "caPrivateKeyPemWoVersion",
            "certRequestPem",
            "isCaCertificate",
            "maxPathLength",
            "setSubjectKeyId",
            "validityPeriodHours",
        }
    ),
    # random
    "random:index/randomPassword:RandomPassword": frozenset(
        {
            "keepers",
            "length",
            "lower",
            "minLower",
            "minNumeric",
            "minSpecial",
            "minUpper",
            "number",
            "numeric",
            "overrideSpecial",
            "special",
            "upper",
        }
    ),
    "random:index/randomString:RandomString": frozenset(
        {
            "keepers",
            "length",
            "lower",
            "minLower",
            "minNumeric",
            "minSpecial",
            "minUpper",
            "number",
            "numeric",
            "overrideSpecial",
            "special",
            "upper",
        }
    ),
    "random:index/randomId:RandomId": frozenset(
        {
            "byteLength",
            "keepers",
            "prefix",
        }
    ),
    # vault
    "vault:index/mount:Mount": frozenset(
        {
            "type",
            "local",
            "sealWrap",
            "externalEntropyAccess",
            "namespace",
        }
    ),
    "vault:kv/secretV2:SecretV2": frozenset(
        {
            "mount",
            "name",
            "namespace",
        }
    ),
    "vault:index/policy:Policy": frozenset(
        {
            "name",
            "namespace",
        }
    ),
    "vault:index/authBackend:AuthBackend": frozenset(
        {
            "type",
            "local",
            "namespace",
            # "path" is conditional; see CONDITIONAL
        }
    ),
    "vault:appRole/authBackendRole:AuthBackendRole": frozenset(
        {
            "roleName",
            "backend",
            "namespace",
        }
    ),
    "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId": frozenset(
        {
            "backend",
            "cidrLists",
            "metadata",
            "namespace",
            "numUses",
            "roleName",
            "secretId",
            "tokenBoundCidrs",
            "ttl",
            "withWrappedAccessor",
            "wrappingTtl",
        }
    ),
    # command
    "command:local:Command": frozenset({"triggers"}),
    "command:remote:Command": frozenset({"triggers"}),
}

UPDATABLE: dict[str, frozenset[str]] = {
    # docker
    "docker:index/container:Container": _DOCKER_CONTAINER_UPDATE_APPLIED | _DOCKER_CONTAINER_UPDATE_STATE_ONLY,
    "docker:index/network:Network": frozenset(),
    "docker:index/volume:Volume": frozenset(),  # only cluster.availability (nested)
    "docker:index/remoteImage:RemoteImage": frozenset(
        {
            "keepLocally",
            "forceRemove",
        }
    ),
    # tls
    "tls:index/privateKey:PrivateKey": frozenset(),
    "tls:index/selfSignedCert:SelfSignedCert": frozenset({"earlyRenewalHours"}),
    "tls:index/certRequest:CertRequest": frozenset(),
    "tls:index/locallySignedCert:LocallySignedCert": frozenset({"earlyRenewalHours"}),
    # random
    "random:index/randomPassword:RandomPassword": frozenset(),
    "random:index/randomString:RandomString": frozenset(),
    "random:index/randomId:RandomId": frozenset(),
    # vault
    "vault:index/mount:Mount": frozenset(
        {
            "path",  # remount in place
            "description",
            "defaultLeaseTtlSeconds",
            "maxLeaseTtlSeconds",
            "auditNonHmacRequestKeys",
            "auditNonHmacResponseKeys",
            "listingVisibility",
            "passthroughRequestHeaders",
            "allowedResponseHeaders",
            "pluginVersion",
            "allowedManagedKeys",
            "delegatedAuthAccessors",
            "identityTokenKey",
            "options",
            "forceNoCache",  # not ForceNew, but not sent on tune; see STATE_ONLY_UPDATES
        }
    ),
    "vault:kv/secretV2:SecretV2": frozenset(
        {
            "dataJson",
            "dataJsonWoVersion",
            "cas",
            "options",
            "customMetadata",
            "disableRead",
            "deleteAllVersions",
        }
    ),
    "vault:index/policy:Policy": frozenset({"policy", "allowOverwrite"}),
    "vault:index/authBackend:AuthBackend": frozenset(
        {
            "path",  # remount in place unless disableRemount=true; see CONDITIONAL
            "description",
            "identityTokenKey",
            "tune",
            "disableRemount",
        }
    ),
    "vault:appRole/authBackendRole:AuthBackendRole": frozenset(
        {
            "roleId",
            "bindSecretId",
            "secretIdBoundCidrs",
            "secretIdNumUses",
            "secretIdTtl",
            "localSecretIds",
            "tokenBoundCidrs",
            "tokenExplicitMaxTtl",
            "tokenMaxTtl",
            "tokenNoDefaultPolicy",
            "tokenNumUses",
            "tokenPeriod",
            "tokenPolicies",
            "tokenTtl",
            "tokenType",
            "aliasMetadata",
        }
    ),
    "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId": frozenset(),
    # The explicit vault provider: the bridge's DiffConfig (pulumi/pulumi-terraform-bridge PR
    # #1683) replaces a provider, and with it every resource it manages, only for config marked
    # ForcesProviderReplace; pulumi/pulumi-vault provider/resources.go marks none. So a new
    # address or CA file (TLS on, or dual -> required) is an update of the provider alone.
    "pulumi:providers:vault": frozenset(
        {
            "addAddressToEnv",
            "address",
            "authLogin",
            "authLoginAws",
            "authLoginAzure",
            "authLoginCert",
            "authLoginGcp",
            "authLoginJwt",
            "authLoginKerberos",
            "authLoginOci",
            "authLoginOidc",
            "authLoginRadius",
            "authLoginTokenFile",
            "authLoginUserpass",
            "caCertDir",
            "caCertFile",
            "clientAuth",
            "headers",
            "maxLeaseTtlSeconds",
            "maxRetries",
            "maxRetriesCcc",
            "namespace",
            "setNamespaceFromToken",
            "skipChildToken",
            "skipGetVaultVersion",
            "skipTlsVerify",
            "tlsServerName",
            "token",
            "tokenName",
            "vaultVersionOverride",
        }
    ),
    # command: every non-trigger input is an update, and an update re-runs `update` (or `create`)
    "command:local:Command": frozenset(
        {
            "create",
            "update",
            "delete",
            "environment",
            "stdin",
            "logging",
            "dir",
            "interpreter",
            "assetPaths",
            "archivePaths",
            "addPreviousOutputInEnv",
        }
    ),
    "command:remote:Command": frozenset(
        {
            "connection",
            "create",
            "update",
            "delete",
            "environment",
            "stdin",
            "logging",
            "addPreviousOutputInEnv",
        }
    ),
}

SECRET_OUTPUTS: dict[str, frozenset[str]] = {
    # docker: nothing Sensitive in these four resources
    "docker:index/container:Container": frozenset(),
    "docker:index/network:Network": frozenset(),
    "docker:index/volume:Volume": frozenset(),
    "docker:index/remoteImage:RemoteImage": frozenset(),
    # tls (Sensitive in the TF schema; the *Wo names come from the installed SDK's additional_secret_outputs)
    "tls:index/privateKey:PrivateKey": frozenset(
        {
            "privateKeyPem",
            "privateKeyOpenssh",
            "privateKeyPemPkcs8",
        }
    ),
    "tls:index/selfSignedCert:SelfSignedCert": frozenset({"privateKeyPem", "privateKeyPemWo"}),
    "tls:index/certRequest:CertRequest": frozenset({"privateKeyPem", "privateKeyPemWo"}),
    "tls:index/locallySignedCert:LocallySignedCert": frozenset({"caPrivateKeyPem", "caPrivateKeyPemWo"}),
    # random
    "random:index/randomPassword:RandomPassword": frozenset({"result", "bcryptHash"}),
    "random:index/randomString:RandomString": frozenset(),  # result is NOT secret
    "random:index/randomId:RandomId": frozenset(),
    # vault
    "vault:index/mount:Mount": frozenset(),
    "vault:kv/secretV2:SecretV2": frozenset({"data", "dataJson", "dataJsonWo"}),
    "vault:index/policy:Policy": frozenset(),
    "vault:index/authBackend:AuthBackend": frozenset(),
    "vault:appRole/authBackendRole:AuthBackendRole": frozenset(),  # roleId is not Sensitive
    "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId": frozenset({"secretId", "wrappingToken"}),
    # command: only remote.connection (provider:"secret"). stdout/stderr are
    # never secret unless the program adds additionalSecretOutputs.
    "command:local:Command": frozenset(),
    "command:remote:Command": frozenset({"connection"}),
}

# ---------------------------------------------------------------------------
# Extra tables
# ---------------------------------------------------------------------------

# Nested sub-fields (Pulumi names) that update in place although the
# top-level property is listed in REPLACE_ON_CHANGE. A change that touches
# only these sub-fields is an update. Any other sub-field change is a replace.
NESTED_IN_PLACE: dict[str, dict[str, frozenset[str]]] = {
    "docker:index/volume:Volume": {
        "cluster": frozenset({"availability"}),
    },
    "docker:index/remoteImage:RemoteImage": {
        # non-ForceNew sub-fields of docker_image.build (state-only; the image is not rebuilt)
        "build": frozenset({"tags", "remove", "secrets", "label", "ulimits", "authConfigs"}),
    },
}

# Rules that depend on values. The property is listed in the set that
# applies in the usual case; the condition says when the other outcome happens.
CONDITIONAL: dict[str, dict[str, str]] = {
    "vault:index/authBackend:AuthBackend": {
        "path": "update (remount) normally; REPLACE if disableRemount=true or Vault < 1.10 "
        "(getMountCustomizeDiffFunc); also no diff for a trailing-slash-only change",
    },
    "tls:index/selfSignedCert:SelfSignedCert": {
        "privateKeyPem": "RequiresReplaceIf prior state value is a PEM string (always, for state "
        "written by tls >= 4.0); old hashed-state values update in place",
    },
    "tls:index/certRequest:CertRequest": {
        "privateKeyPem": "as SelfSignedCert.privateKeyPem",
    },
    "tls:index/locallySignedCert:LocallySignedCert": {
        "caCertPem": "RequiresReplaceIf prior state value is a PEM string",
        "caPrivateKeyPem": "RequiresReplaceIf prior state value is a PEM string",
        "certRequestPem": "RequiresReplaceIf prior state value is a PEM string",
    },
    "random:index/randomPassword:RandomPassword": {
        "keepers": "no replace if the only difference is keys with null values",
        "overrideSpecial": 'no replace for "" -> unset; replace otherwise',
    },
    "random:index/randomString:RandomString": {
        "keepers": "no replace if the only difference is keys with null values",
        "overrideSpecial": 'no replace for "" -> unset; replace otherwise',
    },
    "random:index/randomId:RandomId": {
        "keepers": "no replace if the only difference is keys with null values",
    },
    "docker:index/container:Container": {
        "user": 'DiffSuppress: setting it to "" is no change',
        "workingDir": 'DiffSuppress: setting it to "" is no change',
        "mustRun": "update; only false->true acts (starts the container)",
    },
    "vault:appRole/authBackendRoleSecretId:AuthBackendRoleSecretId": {
        "metadata": 'DiffSuppress treats "" and "{}" as equal',
    },
}

# Updates that only rewrite provider state: the provider makes no API call
# for them (subset of UPDATABLE). Useful if the mock wants to flag "update
# that changes nothing real".
STATE_ONLY_UPDATES: dict[str, frozenset[str]] = {
    "docker:index/container:Container": _DOCKER_CONTAINER_UPDATE_STATE_ONLY,
    "docker:index/remoteImage:RemoteImage": frozenset({"keepLocally", "forceRemove"}),
    "vault:index/mount:Mount": frozenset({"forceNoCache"}),
    "vault:index/policy:Policy": frozenset({"allowOverwrite"}),
    "vault:kv/secretV2:SecretV2": frozenset({"disableRead", "deleteAllVersions"}),
    "vault:index/authBackend:AuthBackend": frozenset({"disableRemount"}),
    "tls:index/selfSignedCert:SelfSignedCert": frozenset({"earlyRenewalHours"}),
    "tls:index/locallySignedCert:LocallySignedCert": frozenset({"earlyRenewalHours"}),
}

# Write-only inputs. They are never in provider state, so the provider never
# reports a diff for them. Bump the companion *Version property instead
# (tls: replace; vault: in-place update).
WRITE_ONLY_INPUTS: dict[str, dict[str, str]] = {
    "tls:index/selfSignedCert:SelfSignedCert": {"privateKeyPemWo": "privateKeyPemWoVersion"},
    "tls:index/certRequest:CertRequest": {"privateKeyPemWo": "privateKeyPemWoVersion"},
    "tls:index/locallySignedCert:LocallySignedCert": {"caPrivateKeyPemWo": "caPrivateKeyPemWoVersion"},
    "vault:kv/secretV2:SecretV2": {"dataJsonWo": "dataJsonWoVersion"},
}

# replace_on_changes resource options that the generated Python SDK adds by
# itself (the engine applies these on top of the provider's own Diff).
SDK_INJECTED_REPLACE_ON_CHANGES: dict[str, tuple[str, ...]] = {
    "command:local:Command": ("triggers[*]",),
    "command:remote:Command": ("triggers[*]",),
}

# The provider reports deleteBeforeReplace=true when it replaces these.
DELETE_BEFORE_REPLACE: frozenset[str] = frozenset({"docker:index/container:Container"})

# Installed-SDK inputs whose rule could not be read from source.
UNVERIFIED: dict[str, dict[str, str]] = {
    "docker:index/container:Container": {
        "deviceCgroupRules": "new in pulumi-docker 5.2.0 (upstream issue "
        "kreuzwerker/terraform-provider-docker#975, after v4.5.0); maps to "
        "HostConfig.DeviceCgroupRules, which ContainerUpdate cannot change, "
        "so probably ForceNew. Not confirmed from source.",
    },
}

SOURCES: dict[str, str] = {
    "docker": "kreuzwerker/terraform-provider-docker v4.5.0 @5074970c71ce6cc393c74942d5d628943834beb9 "
    "(pinned by pulumi-docker v5.1.0; installed SDK 5.2.0 is one release newer); "
    "pulumi/pulumi-docker provider/resources.go",
    "tls": "hashicorp/terraform-provider-tls @d72d90e1b47b7cb5ce6863f528af3154963d61b7 (2026-04-28) "
    "+ PR #789 (write-only key args) + installed pulumi_tls 5.6.2 docstrings",
    "random": "hashicorp/terraform-provider-random v3.9.0 @f8d869dc98d90785f6c8f7131081fa5ef88f9d95 "
    "(pinned by pulumi-random shim)",
    "vault": "hashicorp/terraform-provider-vault @31447510c5c6ab0e1bd60435ff5b4a838b3f2f69 (2026-08-20); "
    "every input of the installed pulumi_vault 7.14.0 types matches it",
    "command": "pulumi/pulumi-command v1.2.1 @7f3eb6f3b77cd0fa3895ba437a695dd393f7dd25; "
    "pulumi/pulumi-go-provider v1.3.0 @3bfb720d763cca9c53a2af4016e224f7259f6345 infer/resource.go",
}


def _top_level(path: str) -> str:
    """`triggers[*]` or `build.args` -> the input property it starts with."""
    return path.split("[", 1)[0].split(".", 1)[0]


def changes_force_replacement(
    type_token: str, properties: tuple[str, ...], forced: set[str] | frozenset[str] = frozenset()
) -> bool:
    """True when the provider would replace rather than update for these changed inputs.
    A property neither listed as replacing nor as updatable counts as replacing: a
    review should over-warn, never under-warn."""
    replacing = REPLACE_ON_CHANGE.get(type_token, frozenset())
    updatable = UPDATABLE.get(type_token, frozenset())
    forced_top = {_top_level(p) for p in forced} | {
        _top_level(p) for p in SDK_INJECTED_REPLACE_ON_CHANGES.get(type_token, ())
    }
    return any(p in forced_top or p in replacing or p not in updatable for p in properties)


def state_only(type_token: str, properties: tuple[str, ...]) -> bool:
    """An update the provider records without touching the running resource."""
    return bool(properties) and set(properties) <= STATE_ONLY_UPDATES.get(type_token, frozenset())

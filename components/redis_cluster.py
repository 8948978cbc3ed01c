"""The Redis cluster: formed once from the running nodes, idempotently, on `pulumi up`."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "redis-cluster-create.sh"


@dataclass(frozen=True)
class RedisClusterArgs:
    nodes: tuple[str, ...]  # container names; the script runs in the first
    addresses: tuple[str, ...]  # host:port the nodes announce
    password: pulumi.Output[str]
    node_resources: tuple[pulumi.Resource, ...]
    tls_ca: str | None = None  # set once plaintext is refused: redis-cli speaks TLS
    replicas: int = 0  # per master; the nodes then come masters first, replicas after


class RedisCluster(pulumi.ComponentResource):
    def __init__(self, name: str, args: RedisClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("devstack:redis:RedisCluster", name, None, opts)
        # The password reaches redis-cli through REDISCLI_AUTH, never an argument.
        tls = f"-e DEVSTACK_REDIS_TLS_CA={shlex.quote(args.tls_ca)} " if args.tls_ca else ""
        if args.replicas:
            tls += f"-e DEVSTACK_REDIS_REPLICAS={args.replicas} "
        nodes = " ".join(shlex.quote(a) for a in args.addresses)
        create = f"docker exec -i -e REDISCLI_AUTH {tls}{shlex.quote(args.nodes[0])} sh -s -- {nodes}"
        self.create = command.local.Command(
            f"{name}-create",
            create=create,
            stdin=SCRIPT.read_text(),
            environment={"REDISCLI_AUTH": pulumi.Output.secret(args.password)},
            logging=command.local.Logging.STDOUT_AND_STDERR,
            # A replaced node is a new node: form (or check) the cluster again.
            triggers=[getattr(r, "id", None) for r in args.node_resources],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.node_resources)),
        )
        self.register_outputs({"nodes": list(args.nodes)})

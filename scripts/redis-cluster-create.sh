#!/bin/sh
# Forms the Redis cluster once: every node a master, all 16384 slots covered.
# Usage: redis-cluster-create.sh HOST:PORT HOST:PORT ...   (REDISCLI_AUTH holds the node password)
# Idempotent: a formed cluster is left alone; a half-formed one stops with a message, never a reset.
set -eu

log() { echo "redis-cluster: $*" >&2; }

[ "$#" -ge 2 ] || { log "need at least two nodes, got $#"; exit 2; }
: "${REDISCLI_AUTH:?REDISCLI_AUTH must hold the node password}"
wait_seconds=${DEVSTACK_WAIT_SECONDS:-120}

# DEVSTACK_REDIS_TLS_CA (a CA file) makes every connection TLS, once plaintext is refused.
tls() {
    if [ -n "${DEVSTACK_REDIS_TLS_CA:-}" ]; then
        redis-cli --tls --cacert "$DEVSTACK_REDIS_TLS_CA" --sni localhost "$@"
    else
        redis-cli "$@"
    fi
}

cli() {
    address=$1
    shift
    tls --no-auth-warning -h "${address%:*}" -p "${address##*:}" "$@"
}

# tick MESSAGE: one more second of waiting, or give up with MESSAGE once the wait is over.
waited=0
tick() {
    waited=$((waited + 1))
    if [ "$waited" -ge "$wait_seconds" ]; then
        log "$1 within ${wait_seconds}s"
        exit 1
    fi
    sleep 1
}

field() { # field NAME: a value from `cluster info` on stdin
    sed -n "s/^$1:\([^[:space:]]*\).*/\1/p"
}

for node in "$@"; do
    waited=0
    while :; do
        reply=$(cli "$node" ping 2>&1) || true
        [ "$reply" = PONG ] && break
        case "$reply" in
            *WRONGPASS* | *NOAUTH* | *NOPERM*)
                log "$node refused the password (${reply%% *})"
                exit 4
                ;;
        esac
        tick "$node did not answer PING"
    done
done

first=$1
info=$(cli "$first" cluster info)
state=$(printf '%s\n' "$info" | field cluster_state)
known=$(printf '%s\n' "$info" | field cluster_known_nodes)
assigned=$(printf '%s\n' "$info" | field cluster_slots_assigned)
if [ "$state" = ok ] && [ "$known" -ge "$#" ] && [ "$assigned" = 16384 ]; then
    log "already formed: $known nodes, all slots assigned"
    exit 0
fi

for node in "$@"; do
    slots=$(cli "$node" cluster info | field cluster_slots_assigned)
    if [ "${slots:-0}" != 0 ]; then
        log "$node already holds slots but the cluster is not whole (state ${state:-unknown});"
        log "inspect with: redis-cli --cluster check $node (nothing was changed)"
        exit 3
    fi
done

# DEVSTACK_REDIS_REPLICAS=1: every master gets a replica (twice the nodes, in the order given).
replicas=${DEVSTACK_REDIS_REPLICAS:-0}
case "$replicas" in 0 | 1) ;; *) log "DEVSTACK_REDIS_REPLICAS must be 0 or 1, got $replicas"; exit 2 ;; esac
log "creating a cluster of $# nodes, $replicas replica(s) per master"
tls --no-auth-warning --cluster create "$@" --cluster-replicas "$replicas" --cluster-yes >&2

waited=0
until [ "$(cli "$first" cluster info | field cluster_state)" = ok ]; do
    tick "the cluster did not reach state ok"
done
log "formed: $# nodes, 16384 slots"

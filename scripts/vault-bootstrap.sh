#!/bin/sh
# Initialise and unseal the dev Vault from the host, then print its root token for Pulumi.
#
# Run by pulumi-command on the user's machine (macOS or Linux); POSIX sh (busybox sh, dash, bash).
# HTTP with curl, else wget (GNU or busybox), never through a proxy; JSON read with sed only.
# HTTPS only with the certificate verified against DEVSTACK_VAULT_CA: curl, or GNU wget (busybox
# wget takes no CA file, so it is refused for https://).
#
# Environment:
#   VAULT_ADDR                 Vault's address from the host, e.g. http://127.0.0.1:8200 (required)
#   DEVSTACK_VAULT_INIT_FILE   the recovery file: Vault's whole init answer, unseal keys and root
#                              token (required), e.g. ~/.config/devstack/dev/vault-init.json
#                              (a leading ~/ is read as $HOME/)
#   DEVSTACK_VAULT_CA          the CA bundle (PEM) Vault's certificate must chain to; required
#                              when VAULT_ADDR is https://
#   DEVSTACK_WAIT_SECONDS      how long to wait for Vault to answer (default 120)
#   DEVSTACK_KEY_SHARES        key shares at init (default 5)
#   DEVSTACK_KEY_THRESHOLD     shares needed to unseal (default 3)
#   DEVSTACK_NO_INIT           1: never initialise (the unseal-only step); an uninitialised Vault
#                              is then an error (exit 5)
#   DEVSTACK_VAULT_CONTAINER   the id (or name) of Vault's container: before anything else is sent,
#                              `docker` must show it running with DEVSTACK_VAULT_CONTAINER_PORT
#                              published at VAULT_ADDR's address and port, so that the keys (over
#                              plain HTTP at phase 0) go to that container and nowhere else
#   DEVSTACK_VAULT_CONTAINER_PORT  the container port behind VAULT_ADDR (e.g. 8200)
#   DEVSTACK_ROOT_TOKEN        keep (default): print a root token that works, generating a new one
#                              with the unseal keys (sys/generate-root) when the file has none or
#                              Vault refuses it; retire (the strict feature): make sure the
#                              provisioner exists, revoke the root token and print the
#                              provisioner's role_id and secret_id instead; none: unseal only,
#                              leave the root token as it is and print {} (by hand, at strict)
#   DEVSTACK_PROVISIONER_POLICY  the provisioner's policy document (retire: required)
#   DEVSTACK_PROVISIONER_CIDRS  where the provisioner may log in from and use its tokens
#                              (retire: required): IPv4 CIDR blocks, comma-separated, e.g.
#                              172.30.0.1/32,172.31.0.1/32 (the addresses Vault sees this
#                              machine's connections come from); a change rewrites the role
#   DEVSTACK_PROVISIONER_FILE  where the provisioner's role_id and secret_id are kept (0600; default:
#                              vault-provisioner.json beside the recovery file)
#
# Steps: wait until sys/seal-status answers; check that the port is our container's (with
# DEVSTACK_VAULT_CONTAINER); initialise if needed; unseal with the file's keys if
# sealed; wait until Vault is active; then (keep) print {"root_token":"..."} as the only line on
# stdout, or (retire) {"role_id":"...","secret_id":"..."}. Requests that carry a token need curl
# (the token goes in a header read from a file: wget would put it on its command line).
# An unsealed Vault is left alone; no key or token is ever written to stderr or put in argv
# (request bodies go through 0600 temporary files).
#
# Vault answers its init call once: that answer is the only copy of the keys. It is written
# 0600 into the recovery file's folder (made 0700 first), renamed onto the recovery file before
# anything else can fail, and flushed; no failure or signal ever deletes a file that holds a key
# (a previous recovery file is copied aside before the init call, never overwritten unkept).
#
# Exit status: 0 done; 1 bad settings, no HTTP client or an unexpected answer from Vault;
# 2 Vault did not answer (or become active) in time; 3 Vault is initialised but the recovery
# file is missing or unreadable; 4 the file's keys do not unseal Vault; 5 Vault is not
# initialised and DEVSTACK_NO_INIT=1; 6 VAULT_ADDR is not Vault's container's published port;
# 7 no root token could be had (none works and generating one failed) or the provisioner could
# not be set up; the unseal keys are untouched in the recovery file either way.

umask 077
set -f # $with_timeout is split on purpose, never globbed
prog=vault-bootstrap

log() {
    printf '%s: %s\n' "$prog" "$*" >&2
}

die() {
    status=$1
    shift
    printf '%s: error: %s\n' "$prog" "$*" >&2
    exit "$status"
}

is_count() {
    case $1 in
        '' | *[!0-9]*) return 1 ;;
    esac
    return 0
}

# is_number_upto MAX TEXT: TEXT is a whole number from 0 to MAX with no leading zero (Vault's
# CIDR parser refuses one)
is_number_upto() {
    case $2 in
        '' | *[!0-9]* | 0?* | ????*) return 1 ;;
    esac
    [ "$2" -le "$1" ]
}

# is_cidr_list TEXT: TEXT is IPv4 CIDR blocks (a.b.c.d/n), comma-separated, none empty
is_cidr_list() {
    cidr_rest=$1,
    while [ -n "$cidr_rest" ]; do
        cidr=${cidr_rest%%,*}
        cidr_rest=${cidr_rest#*,}
        case $cidr in
            */*/*) return 1 ;;
            */*) ;;
            *) return 1 ;;
        esac
        is_number_upto 32 "${cidr#*/}" || return 1
        octets=${cidr%/*}.
        count=0
        while [ -n "$octets" ]; do
            is_number_upto 255 "${octets%%.*}" || return 1
            octets=${octets#*.}
            count=$((count + 1))
        done
        [ "$count" = 4 ] || return 1
    done
}

[ -n "${VAULT_ADDR:-}" ] || die 1 "VAULT_ADDR is not set (e.g. http://127.0.0.1:8200)"
[ -n "${DEVSTACK_VAULT_INIT_FILE:-}" ] || die 1 "DEVSTACK_VAULT_INIT_FILE is not set (the path of the recovery file)"
init_file=$DEVSTACK_VAULT_INIT_FILE
# shellcheck disable=SC2088 # a literal ~/ from the caller
case $init_file in
    "~/"*) init_file=$HOME/${init_file#"~/"} ;;
esac
wait_seconds=${DEVSTACK_WAIT_SECONDS:-120}
key_shares=${DEVSTACK_KEY_SHARES:-5}
key_threshold=${DEVSTACK_KEY_THRESHOLD:-3}
is_count "$wait_seconds" || die 1 "DEVSTACK_WAIT_SECONDS must be a whole number of seconds, got '$wait_seconds'"
is_count "$key_shares" || die 1 "DEVSTACK_KEY_SHARES must be a whole number, got '$key_shares'"
is_count "$key_threshold" || die 1 "DEVSTACK_KEY_THRESHOLD must be a whole number, got '$key_threshold'"
root_mode=${DEVSTACK_ROOT_TOKEN:-keep}
case $root_mode in
    keep | retire | none) ;;
    *) die 1 "DEVSTACK_ROOT_TOKEN must be keep, retire or none, got '$root_mode'" ;;
esac
creds_file=${DEVSTACK_PROVISIONER_FILE:-$(dirname "$init_file")/vault-provisioner.json}
policy_file=${DEVSTACK_PROVISIONER_POLICY:-}
if [ "$root_mode" = retire ]; then
    [ -n "$policy_file" ] || die 1 "DEVSTACK_ROOT_TOKEN=retire needs DEVSTACK_PROVISIONER_POLICY (the provisioner's policy document)"
    [ -r "$policy_file" ] || die 1 "the provisioner's policy $policy_file is missing or unreadable"
    provisioner_cidrs=${DEVSTACK_PROVISIONER_CIDRS:-}
    is_cidr_list "$provisioner_cidrs" ||
        die 1 "DEVSTACK_PROVISIONER_CIDRS must be IPv4 CIDR blocks, comma-separated (e.g. 172.30.0.1/32), got '$(printf '%s' "$provisioner_cidrs" | tr -c '[:print:]' '?')'"
    # as a JSON list: ["a/32","b/32"]
    cidr_json=\"$(printf '%s' "$provisioner_cidrs" | sed 's/,/","/g')\"
fi
base_url=${VAULT_ADDR%/}/v1
ca_file=
case $VAULT_ADDR in
    https://*)
        ca_file=${DEVSTACK_VAULT_CA:-}
        [ -n "$ca_file" ] || die 1 "VAULT_ADDR is https:// but DEVSTACK_VAULT_CA (the CA to verify Vault with) is not set"
        [ -r "$ca_file" ] || die 1 "DEVSTACK_VAULT_CA $ca_file is missing or unreadable"
        ;;
esac

if command -v curl >/dev/null 2>&1; then
    client=curl
elif command -v wget >/dev/null 2>&1; then
    client=wget
else
    die 1 "neither curl nor wget is installed"
fi
# The CA option, given with the CA file. curl and GNU wget keep trusting the
# system's roots beside it, which adds nothing here: no public CA certifies 127.0.0.1 or localhost.
tls_flag=
if [ -n "$ca_file" ]; then
    if [ "$client" = curl ]; then
        tls_flag=--cacert
    else
        case $(wget --version 2>/dev/null) in
            *'GNU Wget'*) tls_flag=--ca-certificate ;;
            *) die 1 "VAULT_ADDR is https://: install curl or GNU wget (busybox wget cannot verify a certificate against a given CA)" ;;
        esac
    fi
fi
# busybox wget -T crashes in some builds: bound wget with timeout(1) where there is one
with_timeout=
if [ "$client" = wget ] && command -v timeout >/dev/null 2>&1; then
    with_timeout="timeout 30"
fi
# wget, never through a proxy, with the answer's headers on stderr (for the status)
wget_quietly() {
    http_proxy='' https_proxy='' HTTP_PROXY='' HTTPS_PROXY='' $with_timeout wget -q -S "$@"
}

# holds_keys FILE: whether FILE may hold (part of) an init answer, a key or the root token. Shell
# builtins only, and an unreadable file counts as holding keys: a missing or failing tool must
# never make the only copy of the keys look disposable.
holds_keys() {
    [ -s "$1" ] || return 1
    [ -r "$1" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            *'"keys"'* | *'"keys_base64"'* | *'"root_token"'*) return 0 ;;
        esac
    done <"$1"
    return 1
}

tmp_dir=$(mktemp -d "${TMPDIR:-/tmp}/devstack-vault.XXXXXX") || die 1 "cannot create a temporary directory"
init_tmp=
rewrite_tmp=
cleanup() {
    rm -rf "$tmp_dir"
    # a rewrite of the recovery file (new root token, or none) that did not land: the recovery
    # file still holds the keys, so the copy goes; should it not, the copy stays and is named
    if [ -n "$rewrite_tmp" ] && [ -f "$rewrite_tmp" ]; then
        if holds_keys "$init_file"; then
            rm -f "$rewrite_tmp"
        else
            printf '%s: error: the unseal keys are in %s: keep that file (rename it to %s)\n' \
                "$prog" "$rewrite_tmp" "$init_file" >&2
        fi
    fi
    # Vault's init answer is removed only when it holds no key (Vault refused, or never answered)
    if [ -n "$init_tmp" ] && [ -f "$init_tmp" ]; then
        if holds_keys "$init_tmp"; then
            printf '%s: error: the unseal keys and root token Vault answered are in %s: keep that file, it is their only copy (rename it to %s)\n' \
                "$prog" "$init_tmp" "$init_file" >&2
        else
            rm -f "$init_tmp"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
answer=$tmp_dir/answer.json
errors=$tmp_dir/errors.txt
body=$tmp_dir/body.json
header=$tmp_dir/token.header # "X-Vault-Token: ...", for curl -H @file
auth=                        # set to $header: the next requests carry that token

# request METHOD PATH BODYFILE OUTFILE: the answer goes to OUTFILE; http_status is set
# ("000": no answer); returns 0 for a 2xx status. Bodies are only ever passed as files.
request() {
    rm -f "$4" "$errors"
    http_status=000
    if [ "$client" = curl ]; then
        if [ -n "$3" ]; then
            http_status=$(curl -q -sS --noproxy "*" ${tls_flag:+"$tls_flag" "$ca_file"} --connect-timeout 5 --max-time 30 -o "$4" -w '%{http_code}' \
                ${auth:+-H "@$auth"} -X "$1" -H 'Content-Type: application/json' --data-binary "@$3" "$base_url/$2" 2>"$errors")
        else
            http_status=$(curl -q -sS --noproxy "*" ${tls_flag:+"$tls_flag" "$ca_file"} --connect-timeout 5 --max-time 30 -o "$4" -w '%{http_code}' \
                ${auth:+-H "@$auth"} -X "$1" "$base_url/$2" 2>"$errors")
        fi
    elif [ -n "$auth" ]; then
        die 1 "internal error: a request with a token needs curl"
    else
        # wget sends a body with POST, which Vault treats as PUT
        if [ -n "$3" ]; then
            wget_quietly ${tls_flag:+"$tls_flag" "$ca_file"} -O "$4" --header 'Content-Type: application/json' --post-file "$3" \
                "$base_url/$2" 2>"$errors"
        else
            wget_quietly ${tls_flag:+"$tls_flag" "$ca_file"} -O "$4" "$base_url/$2" 2>"$errors"
        fi
        http_status=$(sed -n 's/.*HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$errors" | tail -n 1)
    fi
    case $http_status in
        2[0-9][0-9]) return 0 ;;
        [0-9][0-9][0-9]) return 1 ;;
    esac
    http_status=000
    return 1
}

# json_field NAME FILE: the scalar value of top-level field NAME (quotes removed)
json_field() {
    tr -d '\n\r' <"$2" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\{0,1\}\([^\",}]*\).*/\1/p"
}

# json_strings NAME FILE: the strings of array field NAME, one a line (each ending in a newline,
# the last too, so `while read` sees every one)
json_strings() {
    { tr -d '\n\r' <"$2" && echo; } | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\[\([^]]*\)\].*/\1/p" |
        tr ',' '\n' | sed -n 's/^[[:space:]]*"\([^"]*\)"[[:space:]]*$/\1/p'
}

# describe_failure [ANSWERFILE]: "no answer" or "HTTP <status>[: <Vault's first error>]"
# (only for answers that cannot hold a secret: Vault's errors never quote a key or token)
describe_failure() {
    if [ "$http_status" = 000 ]; then
        printf 'no answer'
        return
    fi
    printf 'HTTP %s' "$http_status"
    if [ -n "${1:-}" ] && [ -s "$1" ]; then
        tr -d '\n\r' <"$1" | sed -n 's/.*"errors"[[:space:]]*:[[:space:]]*\["\([^"]*\)".*/: \1/p'
    fi
}

# -- 1. wait for Vault ------------------------------------------------------------------------

# date counts whole seconds and a boundary may fall just after the first reading: only more than
# N of them between two readings prove N really passed (0 means one try).
started=$(date +%s)
log "waiting for Vault at $VAULT_ADDR (up to ${wait_seconds}s)"
until request GET sys/seal-status "" "$answer"; do
    now=$(date +%s)
    if [ "$wait_seconds" -eq 0 ] || [ $((now - started)) -gt "$wait_seconds" ]; then
        die 2 "Vault at $VAULT_ADDR did not answer within ${wait_seconds}s ($(describe_failure)); is its container running (docker ps -a --filter name=dev-vault)?"
    fi
    sleep 1
done
initialized=$(json_field initialized "$answer")
sealed=$(json_field sealed "$answer")
progress=$(json_field progress "$answer")
case "$initialized:$sealed" in
    true:true | true:false | false:true) ;;
    *) die 1 "unexpected answer from $VAULT_ADDR/v1/sys/seal-status (is it Vault?)" ;;
esac

# -- 1b. is it our Vault? --------------------------------------------------------------------

# published_here LINE: whether `docker port` LINE (127.0.0.1:8200, 0.0.0.0:8200, [::1]:8200,
# :::8200) is where VAULT_ADDR points ($addr_host, $addr_port)
published_here() {
    p_host=${1%:*}
    [ "${1##*:}" = "$addr_port" ] || return 1
    [ "$p_host" = "$addr_host" ] && return 0
    case "$p_host:$addr_host" in
        0.0.0.0:127.0.0.1 | 0.0.0.0:localhost | '[::]:[::1]' | '::::[::1]' | '[::]:localhost' | ':::localhost') return 0 ;;
    esac
    return 1
}

if [ -n "${DEVSTACK_VAULT_CONTAINER:-}" ]; then
    container=$DEVSTACK_VAULT_CONTAINER
    container_port=${DEVSTACK_VAULT_CONTAINER_PORT:-}
    is_count "$container_port" || die 1 "DEVSTACK_VAULT_CONTAINER_PORT must be Vault's container port (e.g. 8200), got '$container_port'"
    command -v docker >/dev/null 2>&1 || die 6 "cannot check that $VAULT_ADDR is Vault's container: no docker client"
    running=$(docker inspect --format '{{.State.Running}}' "$container" 2>/dev/null) ||
        die 6 "Vault's container $container does not exist: $VAULT_ADDR is not our Vault"
    [ "$running" = true ] || die 6 "Vault's container $container is not running: $VAULT_ADDR is not our Vault"
    addr_host=${VAULT_ADDR#*://}
    addr_host=${addr_host%%/*}
    addr_port=${addr_host##*:}
    addr_host=${addr_host%:*}
    found=
    for line in $(docker port "$container" "$container_port/tcp" 2>/dev/null); do
        if published_here "$line"; then
            found=1
        fi
    done
    [ -n "$found" ] || die 6 "$VAULT_ADDR is not where Vault's container $container publishes its port $container_port: refusing to send it anything more"
    log "$VAULT_ADDR is Vault's container $container (port $container_port)"
fi

# -- 2. initialise ----------------------------------------------------------------------------

if [ "$initialized" = false ] && [ "${DEVSTACK_NO_INIT:-}" = 1 ]; then
    die 5 "Vault at $VAULT_ADDR is not initialised (was its data volume removed?) and this step may not initialise it; run the initialising step again (pulumi up --replace on its vault init command)"
fi
if [ "$initialized" = false ]; then
    init_dir=$(dirname "$init_file")
    mkdir -p "$init_dir" || die 1 "cannot create $init_dir"
    # the keys' only copy goes here: no one else may list or open the folder
    chmod 700 "$init_dir" || die 1 "cannot make $init_dir private (chmod 700)"
    if [ -s "$init_file" ]; then
        # never destroy a recovery file: it may belong to a Vault whose volume still exists. Copied
        # before the init call, so nothing stands between Vault's answer and its rename below.
        backup=$init_file.replaced-$(date +%Y%m%d%H%M%S)
        cp "$init_file" "$backup" || die 1 "cannot copy the old $init_file aside to $backup"
        log "kept the previous recovery file as $backup"
    fi
    init_tmp=$(mktemp "$init_file.new.XXXXXX") || die 1 "cannot create a file in $init_dir"
    printf '{"secret_shares":%s,"secret_threshold":%s}' "$key_shares" "$key_threshold" >"$body"
    log "initialising Vault ($key_shares key shares, threshold $key_threshold)"
    init_ok=true
    request PUT sys/init "$body" "$init_tmp" || init_ok=false
    # Whatever the status: an answer with a key in it is the only copy, put in place at once
    # (a rename in one folder is atomic) and flushed before any other step can fail.
    holds_keys "$init_tmp" || {
        "$init_ok" || die 1 "initialising Vault failed ($(describe_failure "$init_tmp"))"
        die 1 "Vault's answer to the init call holds no keys"
    }
    mv -f "$init_tmp" "$init_file" || die 1 "cannot rename $init_tmp to $init_file"
    init_tmp=
    if command -v sync >/dev/null 2>&1; then
        sync
    fi
    "$init_ok" || die 1 "Vault's answer to the init call was cut short ($(describe_failure)); what arrived of it is in $init_file: keep that file, then run again"
    log "Vault initialised; its unseal keys and root token are in $init_file (mode 0600): back it up"
    sealed=true
    progress=0
fi

# -- 3. read the recovery file ----------------------------------------------------------------

if [ ! -s "$init_file" ]; then
    die 3 "Vault at $VAULT_ADDR is initialised but its recovery file $init_file is missing; restore that file from your backup (or rename a $init_file.new.* file beside it, left by an interrupted first run) and run again (without its keys Vault cannot be unsealed: the only other way out is to remove the dev-vault-data volume, losing every secret in it)"
fi
[ -r "$init_file" ] || die 3 "cannot read the recovery file $init_file"
# No root token is fine (retired at strict): one is generated below when needed.
root_token=$(json_field root_token "$init_file")
# an empty read is "retired" only when the file has no root_token at all (shell builtins say): a
# failing tool must never make a working token look gone (a new one would be made beside it)
if [ -z "$root_token" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            *'"root_token"'*) die 3 "cannot read the root_token in $init_file" ;;
        esac
    done <"$init_file"
fi
case $root_token in
    *[!A-Za-z0-9._-]*) die 3 "the recovery file $init_file has a malformed root_token; restore it from your backup" ;;
esac

# -- 4. unseal --------------------------------------------------------------------------------

if [ "$sealed" = true ]; then
    keys=$(json_strings keys_base64 "$init_file")
    [ -n "$keys" ] || keys=$(json_strings keys "$init_file")
    [ -n "$keys" ] || die 4 "the recovery file $init_file has no unseal keys; restore it from your backup"
    if [ "${progress:-0}" != 0 ]; then
        printf '{"reset":true}' >"$body"
        request PUT sys/unseal "$body" "$answer" || die 4 "resetting an earlier unseal attempt failed ($(describe_failure))"
    fi
    log "unsealing Vault"
    used=0
    for key in $keys; do
        case $key in
            *[!A-Za-z0-9+/=]*) die 4 "the recovery file $init_file holds a malformed unseal key" ;;
        esac
        printf '{"key":"%s"}' "$key" >"$body"
        used=$((used + 1))
        if ! request PUT sys/unseal "$body" "$answer"; then
            die 4 "Vault at $VAULT_ADDR refused unseal key $used from $init_file ($(describe_failure)); is the file from another Vault?"
        fi
        sealed=$(json_field sealed "$answer")
        [ "$sealed" = false ] && break
    done
    rm -f "$body"
    key=
    keys=
    [ "$sealed" = false ] || die 4 "the $used unseal keys in $init_file do not unseal Vault at $VAULT_ADDR; is the file from another Vault?"
    log "Vault unsealed with $used of the keys"
fi

# -- 5. wait until active --------------------------------------------------------------------

active_wait=$((started + wait_seconds - $(date +%s)))
[ "$active_wait" -ge 10 ] || active_wait=10
active_since=$(date +%s)
until request GET sys/health "" "$answer"; do
    if [ $(($(date +%s) - active_since)) -gt "$active_wait" ]; then
        die 2 "Vault at $VAULT_ADDR is unsealed but not active after ${active_wait}s ($(describe_failure))"
    fi
    sleep 1
done

# -- 6. the root token, or the provisioner in its place ----------------------------------------

# use_token TOKEN: the following requests carry TOKEN (a header in a 0600 file; printf is a
# builtin, so the token is on no command line); no argument: none
use_token() {
    if [ -n "${1:-}" ]; then
        printf 'X-Vault-Token: %s\n' "$1" >"$header"
        auth=$header
    else
        rm -f "$header"
        auth=
    fi
}

# token_works TOKEN: 0 when Vault accepts TOKEN, 1 when it refuses it (403); anything else stops
token_works() {
    use_token "$1"
    if request GET auth/token/lookup-self "" "$answer"; then
        use_token
        return 0
    fi
    use_token
    [ "$http_status" = 403 ] && return 1
    die 7 "checking the root token failed ($(describe_failure "$answer"))"
}

# write_recovery TOKEN: the recovery file again, with the same keys and TOKEN as its root_token
# (none: no root_token), written beside it and renamed over it in one step
write_recovery() {
    hex_keys=$(json_strings keys "$init_file")
    b64_keys=$(json_strings keys_base64 "$init_file")
    [ -n "$hex_keys$b64_keys" ] || die 4 "the recovery file $init_file has no unseal keys; restore it from your backup"
    rewrite_tmp=$(mktemp "$init_file.new.XXXXXX") || die 1 "cannot create a file beside $init_file"
    {
        sep='{'
        for field in keys keys_base64; do
            if [ "$field" = keys ]; then list=$hex_keys; else list=$b64_keys; fi
            [ -n "$list" ] || continue
            printf '%s"%s":[' "$sep" "$field"
            comma=
            for k in $list; do
                printf '%s"%s"' "$comma" "$k"
                comma=,
            done
            printf ']'
            sep=,
        done
        if [ -n "$1" ]; then
            printf ',"root_token":"%s"' "$1"
        fi
        printf '}\n'
    } >"$rewrite_tmp" || die 1 "cannot write $rewrite_tmp"
    [ "$(json_strings keys "$rewrite_tmp")$(json_strings keys_base64 "$rewrite_tmp")" = "$hex_keys$b64_keys" ] ||
        die 1 "rewriting $init_file lost a key: the file is left as it was"
    mv -f "$rewrite_tmp" "$init_file" || die 1 "cannot rename $rewrite_tmp to $init_file"
    rewrite_tmp=
    if command -v sync >/dev/null 2>&1; then
        sync
    fi
}

b64_alphabet=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/

# decode_token ENCODED OTP: the root token that sys/generate-root/update answered, decoded as the
# vault CLI does (raw base64, then XOR with the OTP); shell builtins only, so neither the OTP nor
# the token is ever an argument of a program. Vault's own sys/decode-token needs a token, which
# is exactly what there is none of here.
decode_token() {
    encoded=$1
    otp=$2
    bits=0
    nbits=0
    decoded=
    while [ -n "$encoded" ]; do
        c=${encoded%"${encoded#?}"}
        encoded=${encoded#?}
        [ "$c" = = ] && continue
        before=${b64_alphabet%%"$c"*}
        [ "$before" != "$b64_alphabet" ] || return 1
        bits=$(((bits << 6) | ${#before}))
        nbits=$((nbits + 6))
        if [ "$nbits" -ge 8 ]; then
            nbits=$((nbits - 8))
            byte=$(((bits >> nbits) & 255))
            bits=$((bits & ((1 << nbits) - 1)))
            [ -n "$otp" ] || return 1
            o=${otp%"${otp#?}"}
            otp=${otp#?}
            code=$(printf '%d' "'$o")
            # shellcheck disable=SC2059 # an octal escape made here, from a number
            decoded=$decoded$(printf "\\$(printf '%03o' $((byte ^ code)))")
        fi
    done
    [ -z "$otp" ] || return 1
    case $decoded in
        '' | *[!A-Za-z0-9._-]*) return 1 ;;
    esac
    printf '%s' "$decoded"
}

# generate_root: a new root token from the recovery file's unseal keys (sys/generate-root, which
# needs no token), written into the recovery file; sets root_token
generate_root() {
    [ "$client" = curl ] || die 7 "no working root token, and generating one needs curl"
    keys=$(json_strings keys_base64 "$init_file")
    [ -n "$keys" ] || keys=$(json_strings keys "$init_file")
    [ -n "$keys" ] || die 4 "the recovery file $init_file has no unseal keys; restore it from your backup"
    request GET sys/generate-root/attempt "" "$answer" || die 7 "reading the root generation status failed ($(describe_failure "$answer"))"
    if [ "$(json_field started "$answer")" = true ]; then
        # an attempt left by an interrupted run: its OTP is gone, so it cannot be finished
        log "cancelling an unfinished root token generation"
        request DELETE sys/generate-root/attempt "" "$answer" || die 7 "cancelling it failed ($(describe_failure "$answer"))"
    fi
    printf '{}' >"$body"
    request PUT sys/generate-root/attempt "$body" "$answer" || die 7 "starting a root token generation failed ($(describe_failure "$answer"))"
    otp=$(json_field otp "$answer")
    nonce=$(json_field nonce "$answer")
    case "$otp:$nonce" in
        :* | *: | *[!A-Za-z0-9:-]*) die 7 "unexpected answer to the root generation start" ;;
    esac
    log "generating a root token with the unseal keys"
    # From the key that completes it, Vault holds a new root token only this run can decode: a
    # signal waits until it is in the recovery file (an error still stops at once).
    pending=
    trap 'pending=130' INT
    trap 'pending=143' TERM
    trap 'pending=129' HUP
    used=0
    complete=false
    for key in $keys; do
        case $key in
            *[!A-Za-z0-9+/=]*) die 4 "the recovery file $init_file holds a malformed unseal key" ;;
        esac
        printf '{"key":"%s","nonce":"%s"}' "$key" "$nonce" >"$body"
        used=$((used + 1))
        request PUT sys/generate-root/update "$body" "$answer" ||
            die 7 "Vault refused unseal key $used for the root token ($(describe_failure "$answer"))"
        complete=$(json_field complete "$answer")
        [ "$complete" = true ] && break
    done
    rm -f "$body"
    key=
    keys=
    [ "$complete" = true ] || die 7 "the $used unseal keys in $init_file did not complete the root token"
    encoded=$(json_field encoded_token "$answer")
    rm -f "$answer"
    root_token=$(decode_token "$encoded" "$otp") || die 7 "the new root token did not decode"
    otp=
    write_recovery "$root_token"
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    [ -z "$pending" ] || exit "$pending"
    log "a new root token is in $init_file"
}

# provisioner_works: whether the provisioner's kept role_id and secret_id log in (then login_ok=1)
# and its policy and CIDR binding in Vault are the ones asked for (the copies applied last time,
# beside them, are the same)
login_ok=
provisioner_works() {
    [ -s "$creds_file" ] && [ -r "$creds_file" ] || return 1
    role_id=$(json_field role_id "$creds_file")
    secret_id=$(json_field secret_id "$creds_file")
    case "$role_id:$secret_id" in
        :* | *: | *[!A-Za-z0-9:-]*) return 1 ;;
    esac
    printf '{"role_id":"%s","secret_id":"%s"}' "$role_id" "$secret_id" >"$body"
    if ! request PUT auth/approle-provisioner/login "$body" "$answer"; then
        rm -f "$body" "$answer"
        [ "$http_status" = 400 ] || [ "$http_status" = 403 ] || [ "$http_status" = 404 ] ||
            die 7 "the provisioner's login failed ($(describe_failure))"
        return 1
    fi
    rm -f "$body" "$answer"
    login_ok=1
    [ -s "$creds_file.policy" ] && [ "$(cat "$creds_file.policy")" = "$(cat "$policy_file")" ] &&
        [ -s "$creds_file.cidrs" ] && [ "$(cat "$creds_file.cidrs")" = "$provisioner_cidrs" ]
}

# write_private FILE: stdin into FILE (0600), whole or not at all
write_private() {
    private_tmp=$(mktemp "$1.new.XXXXXX") || die 1 "cannot create a file beside $1"
    if ! cat >"$private_tmp" || ! mv -f "$private_tmp" "$1"; then
        rm -f "$private_tmp"
        die 1 "cannot write $1"
    fi
}

# setup_provisioner: with the root token, the provisioner's policy, its own AppRole mount and
# role, and its role_id and secret_id (a kept secret_id that still logs in is kept)
setup_provisioner() {
    # until the copies are written again at the end, a later run redoes all of this
    rm -f "$creds_file.policy" "$creds_file.cidrs"
    use_token "$root_token"
    { printf '{"policy":"' && sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$policy_file" | while IFS= read -r line || [ -n "$line" ]; do
        printf '%s\\n' "$line"
    done && printf '"}'; } >"$body" || die 1 "cannot read $policy_file"
    request PUT sys/policies/acl/provisioner "$body" "$answer" || die 7 "writing the provisioner's policy failed ($(describe_failure "$answer"))"
    request GET sys/auth "" "$answer" || die 7 "listing the auth methods failed ($(describe_failure "$answer"))"
    case $(tr -d '\n\r' <"$answer") in
        *'"approle-provisioner/"'*) enabled=true ;;
        *) enabled=false ;;
    esac
    if [ "$enabled" = false ]; then
        printf '{"type":"approle","description":"The Vault provider'"'"'s own login (devstack, strict)"}' >"$body"
        request POST sys/auth/approle-provisioner "$body" "$answer" ||
            die 7 "enabling auth/approle-provisioner failed ($(describe_failure "$answer"))"
    fi
    # its tokens carry its policy only, last a `pulumi up` at most; the secret_id does not expire;
    # both log in and work only from this machine's addresses, as management's do
    printf '{"token_policies":["provisioner"],"token_no_default_policy":true,"token_ttl":7200,"token_max_ttl":7200,"secret_id_ttl":0,"secret_id_num_uses":0,"secret_id_bound_cidrs":[%s],"token_bound_cidrs":[%s]}' "$cidr_json" "$cidr_json" >"$body"
    request POST auth/approle-provisioner/role/provisioner "$body" "$answer" ||
        die 7 "writing the provisioner's role failed ($(describe_failure "$answer"))"
    request GET auth/approle-provisioner/role/provisioner/role-id "" "$answer" ||
        die 7 "reading the provisioner's role_id failed ($(describe_failure "$answer"))"
    new_role_id=$(json_field role_id "$answer")
    if [ "$new_role_id" != "${role_id:-}" ] || [ -z "${login_ok:-}" ]; then
        printf '{}' >"$body"
        request POST auth/approle-provisioner/role/provisioner/secret-id "$body" "$answer" ||
            die 7 "minting the provisioner's secret_id failed ($(describe_failure))"
        secret_id=$(json_field secret_id "$answer")
        rm -f "$answer"
    fi
    role_id=$new_role_id
    case "$role_id:$secret_id" in
        :* | *: | *[!A-Za-z0-9:-]*) die 7 "unexpected role_id or secret_id from Vault" ;;
    esac
    printf '{"role_id":"%s","secret_id":"%s"}\n' "$role_id" "$secret_id" | write_private "$creds_file"
    log "the provisioner's role_id and secret_id are in $creds_file (mode 0600)"
    destroy_other_secret_ids
    use_token
    write_private "$creds_file.policy" <"$policy_file"
    printf '%s\n' "$provisioner_cidrs" | write_private "$creds_file.cidrs"
}

# destroy_other_secret_ids: with the root token, destroys every secret_id of the provisioner's
# role but the one in $creds_file, so a lost ids file or an interrupted earlier run leaves no
# second way in (a secret_id of this role never expires)
destroy_other_secret_ids() {
    printf '{"secret_id":"%s"}' "$secret_id" >"$body"
    request POST auth/approle-provisioner/role/provisioner/secret-id/lookup "$body" "$answer" ||
        die 7 "looking up the provisioner's secret_id failed ($(describe_failure "$answer"))"
    rm -f "$body"
    own=$(json_field secret_id_accessor "$answer")
    case $own in
        '' | *[!A-Za-z0-9-]*) die 7 "Vault does not know the provisioner's secret_id just written to $creds_file" ;;
    esac
    request LIST auth/approle-provisioner/role/provisioner/secret-id "" "$answer" ||
        die 7 "listing the provisioner's secret_ids failed ($(describe_failure "$answer"))"
    json_strings keys "$answer" >"$tmp_dir/accessors"
    destroyed=0
    while IFS= read -r accessor; do
        [ "$accessor" != "$own" ] || continue
        case $accessor in
            *[!A-Za-z0-9-]*) die 7 "unexpected secret_id accessor from Vault" ;;
        esac
        printf '{"secret_id_accessor":"%s"}' "$accessor" >"$body"
        request POST auth/approle-provisioner/role/provisioner/secret-id-accessor/destroy "$body" "$answer" ||
            die 7 "destroying an older secret_id of the provisioner failed ($(describe_failure "$answer"))"
        destroyed=$((destroyed + 1))
    done <"$tmp_dir/accessors"
    rm -f "$body" "$answer" "$tmp_dir/accessors"
    [ "$destroyed" = 0 ] || log "destroyed $destroyed older secret_id(s) of the provisioner"
}

if [ "$root_mode" = none ]; then
    printf '{}\n'
    exit 0
fi
if [ "$root_mode" = keep ]; then
    if [ -n "$root_token" ] && [ "$client" = curl ] && ! token_works "$root_token"; then
        log "Vault refuses the root token in $init_file (revoked at strict?)"
        root_token=
    fi
    [ -n "$root_token" ] || generate_root
    printf '{"root_token":"%s"}\n' "$root_token"
    exit 0
fi

[ "$client" = curl ] || die 1 "the strict feature needs curl: a token goes in a header read from a file, which wget cannot do"
if ! provisioner_works; then
    if [ -n "$root_token" ] && ! token_works "$root_token"; then
        root_token=
    fi
    [ -n "$root_token" ] || generate_root
    setup_provisioner
fi
if [ -n "$root_token" ]; then
    # the provider logs in as the provisioner from now on: the root token goes
    use_token "$root_token"
    printf '{}' >"$body"
    if ! request POST auth/token/revoke-self "$body" "$answer" && [ "$http_status" != 403 ]; then
        die 7 "revoking the root token failed ($(describe_failure "$answer")); it is still in $init_file"
    fi
    use_token
    root_token=
    write_recovery ""
    log "the root token is revoked and gone from $init_file (the unseal keys make a new one: docs/vault.md)"
fi
printf '{"role_id":"%s","secret_id":"%s"}\n' "$(json_field role_id "$creds_file")" "$(json_field secret_id "$creds_file")"

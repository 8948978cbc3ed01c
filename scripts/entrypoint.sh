#!/bin/sh
# devstack entrypoint wrapper (phase 0: root-token mode), uploaded into each container as
# /devstack/entrypoint.sh and run as: /bin/sh /devstack/entrypoint.sh <original entrypoint and command...>
#
# Reads one KV v2 secret from Vault, writes each of its keys to a file, renders templates from
# it, then execs the original command. POSIX sh (busybox ash, dash, bash); installs nothing.
# HTTP with curl, else perl (IO::Socket::INET, plain http:// only), else wget.
#
# Environment (nothing secret):
#   VAULT_ADDR               e.g. http://vault:8200 (required)
#   DEVSTACK_SECRET_PATH     the secret to read, e.g. postgres for secret/postgres (required)
#   DEVSTACK_TOKEN_FILE      file holding the Vault token (required; the token is never an env var)
#   DEVSTACK_SECRETS_DIR     where each key of the secret is written (default /run/devstack)
#   DEVSTACK_SECRETS_OWNER   user:group for the files (chown; only when running as root)
#   DEVSTACK_TEMPLATES       space-separated name:dest[:mode]: DEVSTACK_TEMPLATE_DIR/name with
#                            {{key}} placeholders filled in, written to dest (mode default 0400)
#   DEVSTACK_TEMPLATE_DIR    default /devstack/templates
#   DEVSTACK_WAIT_SECONDS    how long to wait for GET /v1/sys/health to answer 200 (default 60)
#   DEVSTACK_EXPORT_FILES    reserved, ignored for now
#
# Secrets never go into the environment or a command line: values are written by awk straight
# to files, the token reaches curl through its config on stdin and perl through stdin (only
# busybox/GNU wget, which has no other way to send a header, gets it as an argument).
# A failure prints one line on stderr, prefixed "devstack-entrypoint:", and exits 1.

prog=devstack-entrypoint
set -f

fail() {
    printf '%s: %s\n' "$prog" "$*" >&2
    exit 1
}

[ "$#" -gt 0 ] || fail "no command to run (usage: entrypoint.sh COMMAND [ARG...])"
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
[ -n "${DEVSTACK_SECRET_PATH:-}" ] || fail "DEVSTACK_SECRET_PATH is not set"
[ -n "${DEVSTACK_TOKEN_FILE:-}" ] || fail "DEVSTACK_TOKEN_FILE is not set"
secret_path=${DEVSTACK_SECRET_PATH#/}
secret_path=${secret_path%/}
case $secret_path in
    '' | *[!A-Za-z0-9_./-]* | *..* | *//*) fail "DEVSTACK_SECRET_PATH '$DEVSTACK_SECRET_PATH' is not a plain path like postgres or apps/api" ;;
esac
secrets_dir=${DEVSTACK_SECRETS_DIR:-/run/devstack}
template_dir=${DEVSTACK_TEMPLATE_DIR:-/devstack/templates}
wait_seconds=${DEVSTACK_WAIT_SECONDS:-60}
owner=${DEVSTACK_SECRETS_OWNER:-}
case $wait_seconds in
    '' | *[!0-9]*) fail "DEVSTACK_WAIT_SECONDS must be a whole number of seconds, got '$wait_seconds'" ;;
esac
vault_url=${VAULT_ADDR%/}/v1
if [ "$(id -u)" != 0 ]; then
    owner= # only root can give files away
fi

# -- templates: check the list before waiting for anything ------------------------------------

templates=
for entry in ${DEVSTACK_TEMPLATES:-}; do
    name=${entry%%:*}
    rest=${entry#*:}
    dest=${rest%%:*}
    mode=0400
    [ "$dest" = "$rest" ] || mode=${rest#*:}
    if [ "$rest" = "$entry" ] || [ -z "$name" ] || [ -z "$dest" ]; then
        fail "DEVSTACK_TEMPLATES entry '$entry' is not name:dest[:mode]"
    fi
    case $name in
        */* | . | ..) fail "DEVSTACK_TEMPLATES entry '$entry': the name must be a file name in $template_dir" ;;
    esac
    case $dest in
        /*) ;;
        *) fail "DEVSTACK_TEMPLATES entry '$entry': the destination must be an absolute path" ;;
    esac
    case $mode in
        [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) ;;
        *) fail "DEVSTACK_TEMPLATES entry '$entry': the mode must be octal, like 0440" ;;
    esac
    if [ ! -f "$template_dir/$name" ] || [ ! -r "$template_dir/$name" ]; then
        fail "template $template_dir/$name is missing"
    fi
    templates="$templates$name $dest $mode
"
done

# -- HTTP -----------------------------------------------------------------------------------

if command -v curl >/dev/null 2>&1; then
    client=curl
elif command -v perl >/dev/null 2>&1; then
    client=perl
elif command -v wget >/dev/null 2>&1; then
    client=wget
else
    fail "this image has none of curl, perl or wget to reach Vault with"
fi
if [ "$client" = perl ]; then
    case $VAULT_ADDR in
        http://*) ;;
        *) fail "VAULT_ADDR $VAULT_ADDR: without curl or wget this image can only reach http:// addresses" ;;
    esac
fi
with_timeout=
if [ "$client" = wget ] && command -v timeout >/dev/null 2>&1; then
    with_timeout="timeout 30" # busybox wget -T crashes in some builds
fi
# wget, never through a proxy, with the answer's headers on stderr (for the status)
wget_quietly() {
    http_proxy='' https_proxy='' HTTP_PROXY='' HTTPS_PROXY='' $with_timeout wget -q -S "$@"
}

# GET URL OUTFILE [TOKEN]: prints "status" (or "000 <reason>" when there was no answer) on
# stdout; the token comes on stdin.
# shellcheck disable=SC2016 # perl, not sh
perl_get='
use strict;
use warnings;
use IO::Socket::INET;
my ($url, $out, $auth, $timeout) = @ARGV;
sub bail { print "000 $_[0]\n"; exit 0 }
my ($host, $port, $path) = $url =~ m{^http://([^/:?#]+)(?::(\d+))?([^#]*)$}
    or bail("perl can only reach http:// addresses");
$port ||= 80;
$path = "/" if $path eq "";
my $token = "";
if ($auth) {
    $token = <STDIN>;
    $token = "" unless defined $token;
    $token =~ s/[\r\n]+\z//;
}
my $raw = eval {
    local $SIG{ALRM} = sub { die "timed out\n" };
    alarm $timeout;
    my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => "tcp", Timeout => $timeout)
        or die "cannot connect to $host:$port: " . ($@ || $!) . "\n";
    binmode $sock;
    my $request = "GET $path HTTP/1.0\r\nHost: $host:$port\r\nUser-Agent: devstack-entrypoint-perl\r\n"
        . "Accept: application/json\r\nConnection: close\r\n";
    $request .= "X-Vault-Token: $token\r\n" if length $token;
    print {$sock} $request, "\r\n" or die "cannot send the request: $!\n";
    local $/;
    my $data = <$sock>;
    close $sock;
    alarm 0;
    defined $data ? $data : "";
};
if (!defined $raw) {
    my $error = $@;
    $error =~ s/\s+\z//;
    $error =~ s/^IO::Socket::INET: //;
    bail($error);
}
my ($head, $body) = split /\r?\n\r?\n/, $raw, 2;
my ($code) = $head =~ m{\AHTTP/\d+(?:\.\d+)? (\d\d\d)} or bail("no HTTP answer from $host:$port");
$body = "" unless defined $body;
if ($head =~ m{^Transfer-Encoding:[ \t]*chunked}mi) {
    my $plain = "";
    while ($body =~ s/\A([0-9A-Fa-f]+)[^\n]*\n//) {
        my $size = hex $1;
        last if $size == 0;
        $plain .= substr($body, 0, $size, "");
        $body =~ s/\A\r?\n//;
    }
    $body = $plain;
}
open(my $fh, ">", $out) or bail("cannot write $out: $!");
binmode $fh;
print {$fh} $body;
close $fh or bail("cannot write $out: $!");
print "$code\n";
'

# http_get URL OUTFILE [auth]: the answer goes to OUTFILE; sets http_status ("000" when there
# was no answer, then http_error says why). With "auth", sends the token as X-Vault-Token.
http_get() {
    rm -f "$2" "$stage/errors"
    http_status=
    http_error=
    case $client in
        curl)
            if [ -n "${3:-}" ]; then
                http_status=$(printf 'header = "X-Vault-Token: %s"\n' "$token" |
                    curl -q -sS --noproxy "*" -K - --connect-timeout 5 --max-time 30 -o "$2" -w '%{http_code}' "$1" 2>"$stage/errors")
            else
                http_status=$(curl -q -sS --noproxy "*" --connect-timeout 5 --max-time 30 -o "$2" -w '%{http_code}' "$1" 2>"$stage/errors")
            fi
            ;;
        perl)
            http_status=$(printf '%s\n' "${3:+$token}" | perl -e "$perl_get" "$1" "$2" "${3:-}" 30 2>"$stage/errors")
            case $http_status in
                '000 '*) http_error=${http_status#000 } ;;
            esac
            http_status=${http_status%% *}
            ;;
        wget)
            if [ -n "${3:-}" ]; then
                wget_quietly -O "$2" --header "X-Vault-Token: $token" "$1" 2>"$stage/errors"
            else
                wget_quietly -O "$2" "$1" 2>"$stage/errors"
            fi
            http_status=$(sed -n 's/.*HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$stage/errors" | tail -n 1)
            ;;
    esac
    case $http_status in
        [0-9][0-9][0-9]) ;;
        *) http_status=000 ;;
    esac
    if [ "$http_status" = 000 ] && [ -z "$http_error" ] && [ -f "$stage/errors" ]; then
        http_error=$(sed -n -e 's/^curl: //p' -e 's/^wget: //p' "$stage/errors" | tail -n 1)
    fi
    [ "$http_status" != 000 ] || [ -n "$http_error" ] || http_error="no answer"
}

# -- secrets dir and scratch space ------------------------------------------------------------

saved_umask=$(umask)
umask 077
if [ ! -d "$secrets_dir" ]; then
    # parents made here stay traversable; the directory itself is private
    (umask 022 && mkdir -p "${secrets_dir%/*}") 2>/dev/null
    mkdir "$secrets_dir" 2>/dev/null || fail "cannot create $secrets_dir"
    chmod 0700 "$secrets_dir" || fail "cannot chmod $secrets_dir"
    if [ -n "$owner" ]; then
        chown "$owner" "$secrets_dir" 2>/dev/null || fail "cannot chown $secrets_dir to $owner"
    fi
fi
stage=$(mktemp -d "$secrets_dir/.devstack.XXXXXX" 2>/dev/null) || fail "cannot write to $secrets_dir"
rendered=
cleanup() {
    rm -rf "$stage"
    for leftover in $rendered; do
        rm -f "$leftover"
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# -- 1. wait for Vault ------------------------------------------------------------------------

started=$(date +%s)
while :; do
    http_get "$vault_url/sys/health" "$stage/health.json"
    [ "$http_status" = 200 ] && break
    if [ $(($(date +%s) - started)) -ge "$wait_seconds" ]; then
        case $http_status in
            000) why=$http_error ;;
            501) why="HTTP 501: not initialised" ;;
            503) why="HTTP 503: sealed" ;;
            429) why="HTTP 429: standby" ;;
            *) why="HTTP $http_status" ;;
        esac
        fail "Vault at $VAULT_ADDR is not ready after ${wait_seconds}s ($why)"
    fi
    sleep 1
done

# -- 2. the token -----------------------------------------------------------------------------

[ -f "$DEVSTACK_TOKEN_FILE" ] || fail "token file $DEVSTACK_TOKEN_FILE is missing"
[ -r "$DEVSTACK_TOKEN_FILE" ] || fail "cannot read token file $DEVSTACK_TOKEN_FILE"
token=
read -r token <"$DEVSTACK_TOKEN_FILE" || [ -n "$token" ] || fail "token file $DEVSTACK_TOKEN_FILE is empty"
token=${token%"$(printf '\r')"}
case $token in
    '') fail "token file $DEVSTACK_TOKEN_FILE is empty" ;;
    *[!A-Za-z0-9._~+/=:-]*) fail "token file $DEVSTACK_TOKEN_FILE does not hold a Vault token on its first line" ;;
esac

# -- 3. the secret ----------------------------------------------------------------------------

http_get "$vault_url/secret/data/$secret_path" "$stage/secret.json" auth
case $http_status in
    200) ;;
    403) fail "permission denied for secret/$secret_path: the token in $DEVSTACK_TOKEN_FILE may not read secret/data/$secret_path" ;;
    404) fail "no secret at secret/$secret_path (write it first, e.g. vault kv put secret/$secret_path key=value)" ;;
    503) fail "Vault at $VAULT_ADDR is sealed; cannot read secret/$secret_path" ;;
    000) fail "reading secret/$secret_path from $VAULT_ADDR failed: $http_error" ;;
    *) fail "reading secret/$secret_path from $VAULT_ADDR failed: HTTP $http_status" ;;
esac

# -- 4. files and templates -------------------------------------------------------------------

# Parses the answer (JSON; strings decoded, \uXXXX to UTF-8), writes each key of .data.data to
# stage/<key> and each template to its temporary output; prints "key <name>" per key, or
# "fail <reason>" (nothing secret) and exits 1.
# shellcheck disable=SC2016 # awk, not sh
render_awk='
function fail(msg) { print "fail " msg; exit 1 }
function bad() { fail("the answer for secret/" spath " is not valid JSON") }
function ws(   c) {
    while (P <= N) {
        c = substr(S, P, 1)
        if (c == " " || c == "\t" || c == "\n" || c == "\r") P++
        else break
    }
}
function hexval(h,   i, d, n) {
    if (length(h) != 4) bad()
    n = 0
    h = tolower(h)
    for (i = 1; i <= 4; i++) {
        d = index("0123456789abcdef", substr(h, i, 1))
        if (!d) bad()
        n = n * 16 + d - 1
    }
    return n
}
function utf8(cp) {
    if (cp == 0) fail("a value in secret/" spath " holds a NUL character")
    if (cp < 128) return sprintf("%c", cp)
    if (cp < 2048) return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
    if (cp < 65536) return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
    return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64, 128 + int(cp / 64) % 64, 128 + cp % 64)
}
function str(   out, c, cp, lo) {
    P++
    out = ""
    while (1) {
        if (P > N) bad()
        if (match(substr(S, P, 256), /^[^"\\]+/)) {
            out = out substr(S, P, RLENGTH)
            P += RLENGTH
            continue
        }
        c = substr(S, P, 1)
        if (c == "\"") { P++; return out }
        c = substr(S, P + 1, 1)
        P += 2
        if (c == "n") out = out "\n"
        else if (c == "t") out = out "\t"
        else if (c == "r") out = out "\r"
        else if (c == "b") out = out "\b"
        else if (c == "f") out = out "\f"
        else if (c == "\"" || c == "\\" || c == "/") out = out c
        else if (c == "u") {
            cp = hexval(substr(S, P, 4))
            P += 4
            if (cp >= 55296 && cp < 56320 && substr(S, P, 2) == "\\u") {
                lo = hexval(substr(S, P + 2, 4))
                if (lo >= 56320 && lo < 57344) {
                    cp = 65536 + (cp - 55296) * 1024 + (lo - 56320)
                    P += 6
                }
            }
            out = out utf8(cp)
        } else bad()
    }
}
function keep(k, v, t) {
    if (k !~ /^[A-Za-z0-9_]+$/) fail("secret/" spath " has a key that is not made of A-Z, a-z, 0-9 and _")
    if (t != "string" && t != "scalar") fail("the value of " k " in secret/" spath " is not a string")
    if (!(k in VAL)) KEYS[++NK] = k
    VAL[k] = v
}
function value(path,   c, k, v) {
    ws()
    if (P > N) bad()
    c = substr(S, P, 1)
    if (c == "{") {
        P++
        if (path == "/data/data") FOUND = 1
        ws()
        if (substr(S, P, 1) == "}") { P++; VT = "object"; return "" }
        while (1) {
            ws()
            if (substr(S, P, 1) != "\"") bad()
            k = str()
            ws()
            if (substr(S, P, 1) != ":") bad()
            P++
            v = value(path "/" k)
            if (path == "/data/data") keep(k, v, VT)
            ws()
            c = substr(S, P, 1)
            P++
            if (c == "}") break
            if (c != ",") bad()
        }
        VT = "object"
        return ""
    }
    if (c == "[") {
        P++
        ws()
        if (substr(S, P, 1) == "]") { P++; VT = "array"; return "" }
        while (1) {
            value(path "/[]")
            ws()
            c = substr(S, P, 1)
            P++
            if (c == "]") break
            if (c != ",") bad()
        }
        VT = "array"
        return ""
    }
    if (c == "\"") { v = str(); VT = "string"; return v }
    if (match(substr(S, P, 64), /^(true|false|null|-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)/)) {
        v = substr(S, P, RLENGTH)
        P += RLENGTH
        VT = (v == "null") ? "null" : "scalar"
        return v
    }
    bad()
}
function render(name, src, out,   content, rec, r, n, i, j, k, c, text) {
    content = ""
    n = 0
    while ((r = (getline rec < src)) > 0) content = content (n++ ? "\001" : "") rec
    if (r < 0) fail("cannot read template " src)
    close(src)
    text = ""
    while ((i = index(content, "{{")) > 0) {
        text = text substr(content, 1, i - 1)
        content = substr(content, i)
        j = 3
        while (substr(content, j, 1) == " ") j++
        k = ""
        while ((c = substr(content, j, 1)) != "" && index(NAMECHARS, c)) { k = k c; j++ }
        while (substr(content, j, 1) == " ") j++
        if (k != "" && substr(content, j, 2) == "}}") {
            if (!(k in VAL)) fail("template " name " uses {{" k "}} but secret/" spath " has no key " k)
            text = text VAL[k]
            content = substr(content, j + 2)
        } else {
            text = text "{{"
            content = substr(content, 3)
        }
    }
    printf "%s", text content > out
    close(out)
}
BEGIN {
    RS = "\001"
    NAMECHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
}
{ S = S (NR > 1 ? "\001" : "") $0 }
END {
    N = length(S)
    P = 1
    value("")
    ws()
    if (P <= N) bad()
    if (!FOUND) fail("the answer for secret/" spath " has no data.data object")
    for (i = 1; i <= NK; i++) {
        f = stage "/" KEYS[i]
        printf "%s", VAL[KEYS[i]] > f
        close(f)
        print "key " KEYS[i]
    }
    n = split(ENVIRON["DEVSTACK_RENDER_LIST"], T, "\n")
    for (i = 1; i + 2 <= n; i += 3) render(T[i], T[i + 1], T[i + 2])
}
'

# each template is rendered into a temporary file next to its destination, then renamed
render_list=
finish_list=
while read -r name dest mode; do
    [ -n "$name" ] || continue
    dest_dir=${dest%/*}
    [ -n "$dest_dir" ] || dest_dir=/
    # a directory made here must stay traversable for the service's user: only the file is private
    (umask 022 && mkdir -p "$dest_dir") 2>/dev/null || fail "cannot create $dest_dir for template $name"
    tmp=$(mktemp "$dest_dir/.devstack-tmp.XXXXXX" 2>/dev/null) || fail "cannot write to $dest_dir for template $name"
    rendered="$rendered $tmp"
    render_list="$render_list$name
$template_dir/$name
$tmp
"
    finish_list="$finish_list$tmp $mode $dest
"
done <<EOF
$templates
EOF

result=$(LC_ALL=C DEVSTACK_RENDER_LIST="$render_list" awk -v stage="$stage" -v spath="$secret_path" \
    "$render_awk" "$stage/secret.json")
status=$?
reason=$(printf '%s\n' "$result" | sed -n 's/^fail //p')
[ -z "$reason" ] || fail "$reason"
[ "$status" = 0 ] || fail "could not read the answer for secret/$secret_path"
keys=$(printf '%s\n' "$result" | sed -n 's/^key //p')

count=0
for key in $keys; do
    [ -f "$stage/$key" ] || : >"$stage/$key"
    chmod 0400 "$stage/$key" || fail "cannot chmod $secrets_dir/$key"
    if [ -n "$owner" ]; then
        chown "$owner" "$stage/$key" 2>/dev/null || fail "cannot chown $secrets_dir/$key to $owner"
    fi
    mv -f "$stage/$key" "$secrets_dir/$key" || fail "cannot write $secrets_dir/$key"
    count=$((count + 1))
done

while read -r tmp mode dest; do
    [ -n "$tmp" ] || continue
    chmod "$mode" "$tmp" || fail "cannot chmod $dest"
    if [ -n "$owner" ]; then
        chown "$owner" "$tmp" 2>/dev/null || fail "cannot chown $dest to $owner"
    fi
    mv -f "$tmp" "$dest" || fail "cannot write $dest"
done <<EOF
$finish_list
EOF

printf '%s: secret/%s -> %s (%s files)%s\n' "$prog" "$secret_path" "$secrets_dir" "$count" \
    "${DEVSTACK_TEMPLATES:+, templates: $DEVSTACK_TEMPLATES}" >&2

# -- 5. hand over -----------------------------------------------------------------------------

cleanup
rendered=
trap - EXIT INT TERM HUP
token=
unset token
umask "$saved_umask"
set +f
exec "$@"

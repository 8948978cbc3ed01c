#!/bin/sh
# devstack entrypoint wrapper, uploaded into each container as /devstack/entrypoint.sh and run
# as: /bin/sh /devstack/entrypoint.sh <original entrypoint and command...>
#
# Reads one KV v2 secret from Vault, writes each of its keys to a file, renders templates from
# it, then execs the original command. POSIX sh (busybox ash, dash, bash); installs nothing.
# The token to read with comes from a file (root-token mode: phase 0, the rollback target) or
# from an AppRole login with the container's own role ID and secret ID (DEVSTACK_AUTH=approle).
#
# http://, the first one the image has: curl (its config on stdin), perl (IO::Socket::INET, the
# token on stdin), nc (the request written by the shell's builtin printf into nc's stdin), wget.
# https://, only with the certificate verified (the chain to DEVSTACK_VAULT_CA and the host name
# or address; never an insecure option, never plain HTTP instead), the first the image has:
# curl (cacert, and an empty capath instead of its built-in CA directory, in its config);
# openssl s_client (`command -v openssl`, else /opt/openssl/bin/openssl; -CAfile,
# -verify_hostname or -verify_ip, -verify_return_error; the request written into its stdin by
# builtins, as for nc); with Alpine's ssl_client on PATH (not busybox's own applet, which
# checks nothing) and only when the system bundle ssl_client trusts is the CA file itself (cmp;
# the platform uploads the CA over it in such images): busybox nc -e handing the socket to
# ssl_client (the request written by builtins into its stdin), else busybox wget. perl and nc reach
# http:// only. With none of these the wrapper fails at once; a certificate that does not verify
# counts as no answer (the reason is kept) until DEVSTACK_WAIT_SECONDS have passed.
#
# Environment (nothing secret):
#   VAULT_ADDR               e.g. http://vault:8200 or https://vault:8200 (required)
#   DEVSTACK_VAULT_CA        https:// only (required then): the PEM CA certificate(s) to verify
#                            Vault with, e.g. /devstack/tls/ca.crt; ignored for http://
#   DEVSTACK_SYSTEM_CA       the system bundle busybox wget's ssl_client trusts (default
#                            /etc/ssl/cert.pem; set only by tests)
#   DEVSTACK_SECRET_PATH     the secret to read, e.g. postgres for secret/postgres (required)
#   DEVSTACK_AUTH            token (the default) or approle
#   DEVSTACK_TOKEN_FILE      token mode: file holding the Vault token (required; the token is
#                            never an env var)
#   DEVSTACK_ROLE_ID_FILE    approle mode: file holding the role ID (required)
#   DEVSTACK_SECRET_ID_FILE  approle mode: file holding the secret ID (required); with both
#                            files the wrapper logs in at $VAULT_ADDR/v1/auth/approle/login and
#                            reads with the token it gets (DEVSTACK_TOKEN_FILE is ignored)
#   DEVSTACK_SECRETS_DIR     where each key of the secret is written (default /run/devstack)
#   DEVSTACK_SECRETS_OWNER   user:group for the files (chown; only when running as root)
#   DEVSTACK_TEMPLATES       space-separated name:dest[:mode[:syntax]]: DEVSTACK_TEMPLATE_DIR/name
#                            with {{key}} placeholders filled in, written to dest (mode default
#                            0400). syntax says how a value is written into the file's format, so
#                            that no value can add a line or end a string early:
#                              line        as is; a value with a control character (newline,
#                                          CR, tab...) is refused (the default)
#                              json        escaped for inside a JSON string ("{{key}}")
#                              redis       escaped for inside a double-quoted Redis config
#                                          string ("{{key}}"): \ \" and \xHH
#                              doubled     inside a double-quoted string where a quote is
#                                          doubled (PgBouncer's auth_file); control characters
#                                          are refused
#                              cuttlefish  a RabbitMQ .conf value, which has no escapes: a value
#                                          with a control or non-ASCII character, a #, or a space
#                                          at either end is refused
#   DEVSTACK_TEMPLATE_DIR    default /devstack/templates
#   DEVSTACK_WAIT_SECONDS    how long to wait for GET /v1/sys/health to answer 200 (default 60)
#   DEVSTACK_NO_TOKEN_ARGV   1 (the strict end state): never wget, the one client that takes the
#                            token as an argument; the wrapper fails instead
#   DEVSTACK_EXPORT_FILES    reserved, ignored for now
#
# Secrets never go into the environment or a command line: values are written by awk straight
# to files; the token, role ID and secret ID reach curl through its config on stdin, perl, nc,
# ssl_client and openssl through stdin (written by builtins, which have no argv of their own).
# Only wget, the last resort, gets the token as an argument (it has no other way to send a
# header; never with DEVSTACK_NO_TOKEN_ARGV=1); the
# login's body reaches it as a 0600 file in the private staging directory, removed at once.
# The login's answer (it holds the token) is kept in a shell variable, never in a file; the
# token is never exported, logged or written down, and is unset before the exec.
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
auth=${DEVSTACK_AUTH:-token}
case $auth in
    token)
        [ -n "${DEVSTACK_TOKEN_FILE:-}" ] || fail "DEVSTACK_TOKEN_FILE is not set"
        ;;
    approle)
        [ -n "${DEVSTACK_ROLE_ID_FILE:-}" ] || fail "DEVSTACK_AUTH=approle needs DEVSTACK_ROLE_ID_FILE (the file holding the role ID)"
        [ -n "${DEVSTACK_SECRET_ID_FILE:-}" ] || fail "DEVSTACK_AUTH=approle needs DEVSTACK_SECRET_ID_FILE (the file holding the secret ID)"
        ;;
    *) fail "DEVSTACK_AUTH must be token or approle, got '$DEVSTACK_AUTH'" ;;
esac
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
cr=$(printf '\r')
nl='
'

# read_id FILE WHAT: the first line of FILE, a Vault token, role ID or secret ID, into $id_value
read_id() {
    [ -f "$1" ] || fail "$2 file $1 is missing"
    [ -r "$1" ] || fail "cannot read $2 file $1"
    id_value=
    read -r id_value <"$1" || [ -n "$id_value" ] || fail "$2 file $1 is empty"
    id_value=${id_value%"$cr"}
    case $id_value in
        '') fail "$2 file $1 is empty" ;;
        *[!A-Za-z0-9._~+/=:@-]*) fail "$2 file $1 does not hold a Vault $2 on its first line" ;;
    esac
}

# approle mode: both IDs are read before anything else, so a missing file fails at once
role_id=
secret_id=
if [ "$auth" = approle ]; then
    read_id "$DEVSTACK_ROLE_ID_FILE" "role ID"
    role_id=$id_value
    read_id "$DEVSTACK_SECRET_ID_FILE" "secret ID"
    secret_id=$id_value
    id_value=
fi

# -- templates: check the list before waiting for anything ------------------------------------

templates=
for entry in ${DEVSTACK_TEMPLATES:-}; do
    name=${entry%%:*}
    rest=${entry#*:}
    dest=${rest%%:*}
    mode=0400
    syntax=line
    [ "$dest" = "$rest" ] || mode=${rest#*:}
    case $mode in
        *:*)
            syntax=${mode#*:}
            mode=${mode%%:*}
            ;;
    esac
    if [ "$rest" = "$entry" ] || [ -z "$name" ] || [ -z "$dest" ]; then
        fail "DEVSTACK_TEMPLATES entry '$entry' is not name:dest[:mode[:syntax]]"
    fi
    case $syntax in
        line | json | redis | doubled | cuttlefish) ;;
        *) fail "DEVSTACK_TEMPLATES entry '$entry': the syntax must be line, json, redis, doubled or cuttlefish" ;;
    esac
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
    templates="$templates$name $dest $mode $syntax
"
done

# -- HTTP -----------------------------------------------------------------------------------

case $VAULT_ADDR in
    [Hh][Tt][Tt][Pp][Ss]://*) tls=1 ;;
    *) tls= ;;
esac
ca_file=
openssl_bin=
if [ -z "$tls" ]; then
    if command -v curl >/dev/null 2>&1; then
        client=curl
    elif command -v perl >/dev/null 2>&1; then
        client=perl
    elif [ "${VAULT_ADDR#http://}" != "$VAULT_ADDR" ] && command -v nc >/dev/null 2>&1; then
        client=nc
    elif command -v wget >/dev/null 2>&1; then
        client=wget
    else
        fail "this image has none of curl, perl, nc or wget to reach Vault with"
    fi
    if [ "$client" = perl ]; then
        case $VAULT_ADDR in
            http://*) ;;
            *) fail "VAULT_ADDR $VAULT_ADDR: without curl or wget this image can only reach http:// addresses" ;;
        esac
    fi
else
    # https://: only a client that verifies Vault's certificate against DEVSTACK_VAULT_CA
    no_verifier="VAULT_ADDR $VAULT_ADDR: this image has no client that can verify Vault's certificate (curl, openssl, or busybox wget with Alpine's ssl_client; perl and nc can only reach http:// addresses)"
    if command -v curl >/dev/null 2>&1; then
        client=curl
    else
        openssl_bin=$(command -v openssl 2>/dev/null) || openssl_bin=
        if [ -z "$openssl_bin" ] && [ -x /opt/openssl/bin/openssl ]; then
            openssl_bin=/opt/openssl/bin/openssl # where the RabbitMQ image keeps it
        fi
        if [ -n "$openssl_bin" ]; then
            client=openssl
        elif command -v wget >/dev/null 2>&1; then
            # busybox wget hands TLS to Alpine's ssl_client, which checks the chain and the host
            # name against the system bundle only; busybox's own ssl_client applet checks nothing
            command -v ssl_client >/dev/null 2>&1 || fail "$no_verifier: wget here has no ssl_client"
            case $(wget --help 2>&1 </dev/null) in
                *BusyBox*) ;;
                *) fail "$no_verifier: this wget is not busybox's, which is the only one handing TLS to ssl_client" ;;
            esac
            case $(ssl_client -h 2>&1 </dev/null) in
                *BusyBox*) fail "$no_verifier: ssl_client here is busybox's own, which does not check certificates" ;;
            esac
            client=wget
            # Better: busybox nc connects and hands the socket to ssl_client itself (nc -e), and
            # the request, token included, reaches ssl_client on a pipe written by builtins:
            # wget could only take the token as an argument, which any local user can list.
            case $(nc --help 2>&1 </dev/null) in
                *'-e PROG'*) client=ncssl ;;
            esac
        else
            fail "$no_verifier"
        fi
    fi
    ca_file=${DEVSTACK_VAULT_CA:-}
    [ -n "$ca_file" ] || fail "VAULT_ADDR $VAULT_ADDR is https:// but DEVSTACK_VAULT_CA (the CA certificate to verify Vault with) is not set"
    case $ca_file in
        *'"'* | *\\* | *"$nl"*) fail "DEVSTACK_VAULT_CA '$ca_file' must be a path without quotes, backslashes or newlines" ;;
    esac
    [ -f "$ca_file" ] || fail "DEVSTACK_VAULT_CA file $ca_file is missing"
    [ -r "$ca_file" ] || fail "cannot read DEVSTACK_VAULT_CA file $ca_file"
    awk '/^-----BEGIN CERTIFICATE-----/ { found = 1; exit } END { exit !found }' "$ca_file" 2>/dev/null ||
        fail "DEVSTACK_VAULT_CA file $ca_file holds no PEM certificate"
    if [ "$client" = wget ] || [ "$client" = ncssl ]; then
        # the platform uploads the CA itself over the system bundle in such images: the same
        # file, byte for byte, or ssl_client would trust whatever else the bundle holds
        system_ca=${DEVSTACK_SYSTEM_CA:-/etc/ssl/cert.pem}
        cmp -s "$ca_file" "$system_ca" ||
            fail "$no_verifier: busybox wget's ssl_client trusts only $system_ca, which is not DEVSTACK_VAULT_CA ($ca_file)"
    fi
fi
# DEVSTACK_NO_TOKEN_ARGV=1 (the strict end state): wget, which takes the token only as an
# argument, is never used; an image with nothing better fails here, saying so.
if [ "$client" = wget ] && [ "${DEVSTACK_NO_TOKEN_ARGV:-}" = 1 ]; then
    fail "VAULT_ADDR $VAULT_ADDR: only wget is left to reach Vault with, which would show the token on its command line (DEVSTACK_NO_TOKEN_ARGV=1); the image needs curl, openssl, or busybox nc with -e and Alpine's ssl_client"
fi
# nc and openssl speak HTTP/1.0 themselves: the host and port from VAULT_ADDR
if [ "$client" = nc ] || [ "$client" = openssl ] || [ "$client" = ncssl ]; then
    raw_hostport=${VAULT_ADDR#*://}
    raw_hostport=${raw_hostport%%/*}
    default_port=80
    [ -z "$tls" ] || default_port=443
    case $raw_hostport in
        \[*\]:*)
            raw_host=${raw_hostport%%\]:*}
            raw_host=${raw_host#\[}
            raw_port=${raw_hostport##*\]:}
            ;;
        \[*\])
            raw_host=${raw_hostport#\[}
            raw_host=${raw_host%\]}
            raw_port=$default_port
            ;;
        *:*)
            raw_host=${raw_hostport%:*}
            raw_port=${raw_hostport##*:}
            ;;
        *)
            raw_host=$raw_hostport
            raw_port=$default_port
            ;;
    esac
    case $raw_host in
        '' | *[!A-Za-z0-9.:_-]*) fail "VAULT_ADDR $VAULT_ADDR: no host name or address in it" ;;
    esac
    case $raw_port in
        '' | *[!0-9]*) fail "VAULT_ADDR $VAULT_ADDR: the port must be a number" ;;
    esac
    # an address is checked against the certificate's IP names (and is never sent as SNI)
    case $raw_host in
        *:*)
            raw_ip=1
            raw_connect="[$raw_host]:$raw_port"
            ;;
        *[!0-9.]*)
            raw_ip=
            raw_connect="$raw_host:$raw_port"
            ;;
        *)
            raw_ip=1
            raw_connect="$raw_host:$raw_port"
            ;;
    esac
fi
with_timeout=
if [ "$client" = wget ] || [ "$client" = nc ] || [ "$client" = openssl ] || [ "$client" = ncssl ]; then
    if command -v timeout >/dev/null 2>&1; then
        with_timeout="timeout 30" # busybox wget -T crashes in some builds; nc -w only covers the connect
    fi
fi
# wget, never through a proxy, with the answer's headers on stderr (for the status)
wget_quietly() {
    http_proxy='' https_proxy='' HTTP_PROXY='' HTTPS_PROXY='' $with_timeout wget -q -S "$@"
}

# METHOD URL OUT TIMEOUT, with the token (or an empty line) and then the request's body on
# stdin: prints "status" (or "000 <reason>" when there was no answer) on stdout, then the
# answer's body when OUT is "-" (else the body goes to the file OUT).
# shellcheck disable=SC2016 # perl, not sh
perl_http='
use strict;
use warnings;
use IO::Socket::INET;
my ($method, $url, $out, $timeout) = @ARGV;
sub bail { print "000 $_[0]\n"; exit 0 }
my ($host, $port, $path) = $url =~ m{^http://([^/:?#]+)(?::(\d+))?([^#]*)$}
    or bail("perl can only reach http:// addresses");
$port ||= 80;
$path = "/" if $path eq "";
my $token = <STDIN>;
$token = "" unless defined $token;
$token =~ s/[\r\n]+\z//;
my $data = do { local $/; <STDIN> };
$data = "" unless defined $data;
my $raw = eval {
    local $SIG{ALRM} = sub { die "timed out\n" };
    alarm $timeout;
    my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => "tcp", Timeout => $timeout)
        or die "cannot connect to $host:$port: " . ($@ || $!) . "\n";
    binmode $sock;
    my $request = "$method $path HTTP/1.0\r\nHost: $host:$port\r\nUser-Agent: devstack-entrypoint-perl\r\n"
        . "Accept: application/json\r\nConnection: close\r\n";
    $request .= "X-Vault-Token: $token\r\n" if length $token;
    $request .= "Content-Type: application/json\r\nContent-Length: " . length($data) . "\r\n" if length $data;
    print {$sock} $request, "\r\n", $data or die "cannot send the request: $!\n";
    local $/;
    my $answer = <$sock>;
    close $sock;
    alarm 0;
    defined $answer ? $answer : "";
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
binmode STDOUT;
if ($out eq "-") {
    print "$code\n", $body;
    exit 0;
}
open(my $fh, ">", $out) or bail("cannot write $out: $!");
binmode $fh;
print {$fh} $body;
close $fh or bail("cannot write $out: $!");
print "$code\n";
'

# curl's config, on its stdin: the token and the body never reach its command line. The body
# (compact JSON, no blanks) is an unquoted value, which curl takes as it is. For https:// the
# only trust anchor is DEVSTACK_VAULT_CA: curl's built-in CA directory is replaced by an empty
# one, and nothing but https is spoken.
curl_config() {
    printf 'user-agent = "devstack-entrypoint-curl"\n'
    [ -z "$tls" ] || printf 'cacert = "%s"\ncapath = "%s"\nproto = "=https"\n' "$ca_file" "$stage/capath"
    [ -z "$1" ] || printf 'header = "X-Vault-Token: %s"\n' "$token"
    [ -z "$http_data" ] || printf 'header = "Content-Type: application/json"\ndata-binary = %s\n' "$http_data"
}

# METHOD URL [auth]: the HTTP/1.0 request for nc and openssl, written by builtins only
raw_request() {
    printf '%s /%s HTTP/1.0\r\nHost: %s\r\nUser-Agent: devstack-entrypoint-%s\r\nAccept: application/json\r\nConnection: close\r\n' \
        "$1" "${2#*://*/}" "$raw_hostport" "$client"
    [ -z "$3" ] || printf 'X-Vault-Token: %s\r\n' "$token"
    if [ -n "$http_data" ]; then
        printf 'Content-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' "${#http_data}" "$http_data"
    else
        printf '\r\n'
    fi
}

# OUT: splits the $answer of nc or openssl into the status and the body (to the file OUT, or
# $http_body for "-")
raw_answer() {
    case $answer in
        '') return ;; # no connection (or no verified one): the client said why on stderr
        HTTP/[0-9]*' '[0-9][0-9][0-9]*) ;;
        *)
            http_error="no HTTP answer from $raw_host:$raw_port"
            return
            ;;
    esac
    head=${answer%%"$cr$nl$cr$nl"*}
    if [ "$head" = "$answer" ]; then
        http_error="an incomplete HTTP answer from $raw_host:$raw_port"
        return
    fi
    case $head in
        *"$nl"[Tt][Rr][Aa][Nn][Ss][Ff][Ee][Rr]-[Ee][Nn][Cc][Oo][Dd][Ii][Nn][Gg]:*[Cc][Hh][Uu][Nn][Kk][Ee][Dd]*)
            http_error="a chunked answer from $raw_host:$raw_port, which $client cannot take apart"
            return
            ;;
    esac
    http_status=${head%%"$cr"*}
    http_status=${http_status#* }
    http_status=${http_status%% *}
    if [ "$1" = - ]; then
        http_body=${answer#*"$cr$nl$cr$nl"}
    else
        printf '%s' "${answer#*"$cr$nl$cr$nl"}" >"$1" || http_error="cannot write $1"
    fi
}

# openssl s_client, verifying the chain to DEVSTACK_VAULT_CA and the host name (or address);
# -quiet leaves only the server's bytes on stdout (the verify lines go to stderr)
openssl_connect() {
    if [ -n "$raw_ip" ]; then
        set -- -verify_ip "$raw_host"
    else
        set -- -servername "$raw_host" -verify_hostname "$raw_host"
    fi
    $with_timeout "$openssl_bin" s_client -quiet -connect "$raw_connect" "$@" -verify_return_error -CAfile "$ca_file"
}

# busybox nc connects, then runs sh in its place with the socket on stdin and stdout: sh moves it
# to fd 3 for ssl_client (-s3, as busybox wget does), whose plaintext side is this function's
# stdin (the request) and stdout (the answer), passed down as fds 4 and 5. ssl_client checks the
# chain against the system bundle (the CA, checked above) and the name given with -n.
# shellcheck disable=SC2016 # for the inner sh
ncssl_connect() {
    $with_timeout nc -w 5 "$raw_host" "$raw_port" \
        -e /bin/sh -c 'exec ssl_client -s3 -n "$1" 3<&0 <&4 >&5 4<&- 5<&-' ncssl "$raw_host" 4<&0 5>&1
}

# why openssl gave no answer, from its stderr: the verify error, else the first error's reason
openssl_reason() {
    why=$(awk -F: '
        /^verify error:/ { sub(/^verify error:(num=[0-9]+:)?/, ""); print "verify " $0; done = 1; exit }
        $2 == "error" && NF >= 6 && first == "" { first = ($6 == "system lib" ? $NF : $6) }
        END { if (!done && first != "") print "error " first }' "$stage/errors" 2>/dev/null)
    case $why in
        'verify '*) http_error="Vault's certificate does not verify against $ca_file: ${why#verify }" ;;
        'error '*) http_error="openssl s_client: ${why#error }" ;;
    esac
    why=
}

# OUT URL [auth] [POSTFILE]
wget_call() {
    wget_url=$2
    wget_post=${4:-}
    if [ -n "${3:-}" ]; then
        set -- -O "$1" -U devstack-entrypoint-wget --header "X-Vault-Token: $token"
    else
        set -- -O "$1" -U devstack-entrypoint-wget
    fi
    if [ -n "$wget_post" ]; then
        set -- "$@" --header "Content-Type: application/json" --post-file "$wget_post"
    fi
    wget_quietly "$@" "$wget_url"
}

# http_request METHOD URL OUT [auth]: the answer's body goes to the file OUT, or with OUT "-"
# into $http_body (an answer holding a token never touches a file). $http_data, when set, is
# sent as the JSON body (with POST); with "auth" the token goes as X-Vault-Token. Sets
# http_status ("000" when there was no answer, then http_error says why).
http_request() {
    rm -f "$stage/errors"
    [ "$3" = - ] || rm -f "$3"
    http_status=
    http_error=
    http_body=
    answer=
    case $client in
        curl)
            answer=$(curl_config "${4:-}" | curl -q -sS --noproxy "*" -K - --connect-timeout 5 --max-time 30 \
                -o "$3" -w '\n%{http_code}' "$2" 2>"$stage/errors")
            http_status=${answer##*"$nl"}
            [ "$3" != - ] || http_body=${answer%"$nl"*}
            ;;
        perl)
            answer=$(printf '%s\n%s' "${4:+$token}" "$http_data" | perl -e "$perl_http" "$1" "$2" "$3" 30 2>"$stage/errors")
            http_status=${answer%%"$nl"*}
            if [ "$3" = - ] && [ "$http_status" != "$answer" ]; then
                http_body=${answer#*"$nl"}
            fi
            case $http_status in
                '000 '*) http_error=${http_status#000 } ;;
            esac
            http_status=${http_status%% *}
            ;;
        nc)
            answer=$(raw_request "$1" "$2" "${4:-}" | $with_timeout nc -w 5 "$raw_host" "$raw_port" 2>"$stage/errors"
                printf .)
            answer=${answer%.}
            raw_answer "$3"
            ;;
        openssl)
            answer=$(raw_request "$1" "$2" "${4:-}" | openssl_connect 2>"$stage/errors"
                printf .)
            answer=${answer%.}
            raw_answer "$3"
            [ -n "$http_status" ] || [ -n "$http_error" ] || openssl_reason
            ;;
        ncssl)
            answer=$(raw_request "$1" "$2" "${4:-}" | ncssl_connect 2>"$stage/errors"
                printf .)
            answer=${answer%.}
            raw_answer "$3"
            ;;
        wget)
            if [ -n "$http_data" ]; then
                printf '%s' "$http_data" >"$stage/request" || fail "cannot write to $stage"
                answer=$(wget_call "$3" "$2" "${4:-}" "$stage/request" 2>"$stage/errors")
                rm -f "$stage/request"
            else
                answer=$(wget_call "$3" "$2" "${4:-}" 2>"$stage/errors")
            fi
            [ "$3" != - ] || http_body=$answer
            http_status=$(sed -n 's/.*HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$stage/errors" | tail -n 1)
            ;;
    esac
    answer=
    case $http_status in
        [0-9][0-9][0-9]) ;;
        *) http_status=000 ;;
    esac
    if [ "$http_status" = 000 ] && [ -z "$http_error" ] && [ -f "$stage/errors" ]; then
        http_error=$(sed -n -e 's/^curl: //p' -e 's/^wget: //p' -e 's/^nc: //p' -e 's/^ssl_client: //p' "$stage/errors" | tail -n 1)
    fi
    [ "$http_status" != 000 ] || [ -n "$http_error" ] || http_error="no answer"
}

# -- JSON ------------------------------------------------------------------------------------

# A JSON parser in awk (strings decoded, \uXXXX to UTF-8), shared by the pick in step 2 and
# the rendering in step 4. S is the document, P the position, N its length; value(path) parses
# one value, remembering the string at path "want" (an array's elements are at "<path>/[]"),
# and with RENDER set keeps each string of .data.data. On an error: "fail <reason>" (nothing
# secret) and exit 1.
# shellcheck disable=SC2016 # awk, not sh
json_awk='
function fail(msg) { print "fail " msg; exit 1 }
function bad() { fail(badmsg) }
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
        if (RENDER && path == "/data/data") FOUND = 1
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
            if (RENDER && path == "/data/data") keep(k, v, VT)
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
    if (c == "\"") {
        v = str()
        VT = "string"
        if (want != "" && path == want && !PICKED) { PICKED = 1; PICKVAL = v }
        return v
    }
    if (match(substr(S, P, 64), /^(true|false|null|-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)/)) {
        v = substr(S, P, RLENGTH)
        P += RLENGTH
        VT = (v == "null") ? "null" : "scalar"
        return v
    }
    bad()
}
'

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
if [ "$client" = curl ] && [ -n "$tls" ]; then
    mkdir "$stage/capath" 2>/dev/null || fail "cannot write to $stage" # stays empty: curl's capath
fi
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

# date counts whole seconds and a boundary may fall just after the first reading: only more than
# N of them between two readings prove N really passed (0 means one try).
started=$(date +%s)
while :; do
    http_request GET "$vault_url/sys/health" "$stage/health.json"
    [ "$http_status" = 200 ] && break
    if [ "$wait_seconds" -eq 0 ] || [ $(($(date +%s) - started)) -gt "$wait_seconds" ]; then
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

# JSON pick: prints "ok <the string at path WANT>" (the first one, for an array's "[]"), or
# "none"; the document comes on stdin, so a token in it never reaches a command line.
# shellcheck disable=SC2016 # awk, not sh
pick_main='
BEGIN { RS = "\001" }
{ S = S (NR > 1 ? "\001" : "") $0 }
END {
    N = length(S)
    P = 1
    value("")
    ws()
    if (P <= N) bad()
    if (PICKED) print "ok " PICKVAL
    else print "none"
}
'
# json_pick WANT: reads the document on stdin
json_pick() {
    LC_ALL=C awk -v want="$1" -v badmsg="not valid JSON" "$json_awk$pick_main"
}

# redact TEXT NEEDLE: TEXT with every NEEDLE in it replaced, into $redacted
redact() {
    redacted=
    rest=$1
    while [ -n "$2" ]; do
        case $rest in
            *"$2"*)
                redacted=$redacted${rest%%"$2"*}'[redacted]'
                rest=${rest#*"$2"}
                ;;
            *) break ;;
        esac
    done
    redacted=$redacted$rest
    rest=
}

# Vault's first error from $http_body, on one line and without the role ID or secret ID, into
# $reason (empty when there is none)
vault_reason() {
    reason=$(printf '%s' "$http_body" | json_pick '/errors/[]' 2>/dev/null)
    case $reason in
        'ok '*) reason=${reason#ok } ;;
        *) reason= ;;
    esac
    redact "$reason" "$secret_id"
    redact "$redacted" "$role_id"
    reason=$redacted
    redacted=
    # Vault ends some CIDR refusals with Go's marker for a nil error; a multierror of one
    # ("1 error occurred:\n\t* permission denied\n\n") is just that error
    reason=${reason%": %!w(<nil>)"}
    case $reason in
        '1 error occurred:'*'* '*) reason=${reason#*'* '} ;;
    esac
    reason=$(printf '%s' "$reason" | tr -s '\r\n\t' '   ')
    reason=${reason% }
}

token=
if [ "$auth" = approle ]; then
    http_data="{\"role_id\":\"$role_id\",\"secret_id\":\"$secret_id\"}"
    http_request POST "$vault_url/auth/approle/login" -
    http_data=
    case $http_status in
        200)
            token=$(printf '%s' "$http_body" | json_pick /auth/client_token 2>/dev/null)
            case $token in
                'ok '*) token=${token#ok } ;;
                *) token= ;;
            esac
            case $token in
                '' | *[!A-Za-z0-9._~+/=:-]*)
                    token=
                    http_body=
                    fail "AppRole login for secret/$secret_path: Vault's answer has no usable auth.client_token"
                    ;;
            esac
            ;;
        400)
            vault_reason
            if [ -z "$reason" ]; then
                reason="HTTP 400: an invalid role or secret ID, or an address outside their CIDRs"
                [ "$client" != wget ] || reason="$reason (wget keeps Vault's own reason to itself)"
            fi
            fail "AppRole login refused for secret/$secret_path: $reason"
            ;;
        403 | 404 | 405)
            vault_reason
            fail "AppRole login for secret/$secret_path failed: HTTP $http_status${reason:+ ($reason)}; is the AppRole auth method enabled at auth/approle?"
            ;;
        503) fail "Vault at $VAULT_ADDR is sealed; cannot log in with AppRole for secret/$secret_path" ;;
        000) fail "AppRole login at $VAULT_ADDR failed: $http_error" ;;
        *)
            vault_reason
            fail "AppRole login for secret/$secret_path failed: HTTP $http_status${reason:+ ($reason)}"
            ;;
    esac
    http_body=
    role_id=
    secret_id=
    denied="the AppRole login's token may not read secret/data/$secret_path (see the role's policies, token_ttl and token_bound_cidrs)"
else
    [ -f "$DEVSTACK_TOKEN_FILE" ] || fail "token file $DEVSTACK_TOKEN_FILE is missing"
    [ -r "$DEVSTACK_TOKEN_FILE" ] || fail "cannot read token file $DEVSTACK_TOKEN_FILE"
    read -r token <"$DEVSTACK_TOKEN_FILE" || [ -n "$token" ] || fail "token file $DEVSTACK_TOKEN_FILE is empty"
    token=${token%"$cr"}
    case $token in
        '') fail "token file $DEVSTACK_TOKEN_FILE is empty" ;;
        *[!A-Za-z0-9._~+/=:-]*) fail "token file $DEVSTACK_TOKEN_FILE does not hold a Vault token on its first line" ;;
    esac
    denied="the token in $DEVSTACK_TOKEN_FILE may not read secret/data/$secret_path"
fi

# -- 3. the secret ----------------------------------------------------------------------------

http_request GET "$vault_url/secret/data/$secret_path" "$stage/secret.json" auth
case $http_status in
    200) ;;
    403) fail "permission denied for secret/$secret_path: $denied" ;;
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
render_awk=$json_awk'
# the value written in the syntax of its template (see DEVSTACK_TEMPLATES), never in a message
function enc(v, syn, name, k,   out, n, i, c, o, why) {
    out = ""
    why = ""
    n = length(v)
    for (i = 1; i <= n; i++) {
        c = substr(v, i, 1)
        o = (c in ORD) ? ORD[c] : 0
        if (syn == "json") {
            if (c == "\"" || c == "\\") out = out "\\" c
            else if (o < 32 || o == 127) out = out sprintf("\\u%04x", o)
            else out = out c
        } else if (syn == "redis") {
            if (c == "\"" || c == "\\") out = out "\\" c
            else if (o < 32 || o >= 127) out = out sprintf("\\x%02x", o)
            else out = out c
        } else {
            if (o < 32 || o == 127) why = "a control character"
            else if (syn == "cuttlefish" && o >= 128) why = "a non-ASCII character"
            else if (syn == "cuttlefish" && c == "#") why = "a #, where the file starts a comment"
            else if (syn == "doubled" && c == "\"") c = "\"\""
            if (why != "") fail("template " name ": the value of " k " holds " why ", which its " syn " syntax cannot carry")
            out = out c
        }
    }
    if (syn == "cuttlefish" && (v ~ /^[ ]/ || v ~ /[ ]$/ || v == ""))
        fail("template " name ": the value of " k " is empty or has a space at an end, which its cuttlefish syntax drops")
    return out
}
function render(name, src, out, syn,   content, rec, r, n, i, j, k, c, text) {
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
            text = text enc(VAL[k], syn, name, k)
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
    for (i = 1; i < 256; i++) ORD[sprintf("%c", i)] = i
    RENDER = 1
    badmsg = "the answer for secret/" spath " is not valid JSON"
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
    for (i = 1; i + 3 <= n; i += 4) render(T[i], T[i + 1], T[i + 2], T[i + 3])
}
'

# each template is rendered into a temporary file next to its destination, then renamed
render_list=
finish_list=
while read -r name dest mode syntax; do
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
$syntax
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
role_id=
secret_id=
http_body=
unset token role_id secret_id http_body http_data answer
umask "$saved_umask"
set +f
exec "$@"

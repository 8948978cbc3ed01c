#!/bin/sh
# The MySQL account step's client, run in the mysql container as
#   sh -c "<this file>" mysql-accounts /run/devstack/root_password  (the SQL script on stdin)
# Root's password comes from the file the entrypoint wrapper wrote there: never the step's
# environment or a command line. The shell's builtin `read` takes it, and mysql gets it in an
# option file on a here-document (file descriptor 3). mysql's output is dropped and each error
# is cut to its code and line number: MySQL's message may quote the script, which holds the
# accounts' passwords.
password=
IFS= read -r password <"$1" || [ -n "$password" ] || {
    echo "mysql-accounts: cannot read $1" >&2
    exit 1
}
case $password in
    '' | *[\"\\]*)
        echo "mysql-accounts: $1 is empty or holds a quote or backslash" >&2
        exit 1
        ;;
esac
errors=$(mysql --defaults-extra-file=/dev/fd/3 -uroot 2>&1 >/dev/null 3<<END
[client]
password="$password"
END
)
status=$?
password=
printf '%s\n' "$errors" |
    sed -n 's/^\(ERROR [0-9]* ([0-9A-Za-z]*)\( at line [0-9]*\)\{0,1\}\).*/mysql-accounts: \1 (the message is withheld: it may quote a password)/p' >&2
[ "$status" = 0 ] || [ -n "$errors" ] || echo "mysql-accounts: mysql failed (exit $status)" >&2
exit "$status"

"""What every store's backup scripts share (devstack.model.Backup): how a script takes its
account's password, and the names the side copies get.

A script runs as `sh -c SCRIPT` where its server is, its stdin first one line with the password,
then (for a restore) the dump. It keeps the password in a shell variable or a 0600 file in a
private temporary directory removed on exit: never in argv, never in an exported variable.
"""

from __future__ import annotations

from devstack.credentials import MANAGEMENT_USERS
from devstack.model import ClientRole

BACKUP_USER = MANAGEMENT_USERS[ClientRole.BACKUP]
RESTORE_USER = MANAGEMENT_USERS[ClientRole.RESTORE]
SIDE_SUFFIX = "_devstack_restore"  # the side copy a restore loads and checks before the swap
OLD_SUFFIX = "_devstack_old"  # the live copy while the side one takes its place

# The password line into $password, and a private directory $secrets (removed on exit).
PREAMBLE = """set -eu
umask 077
secrets=$(mktemp -d)
trap 'rm -rf "$secrets"' EXIT
IFS= read -r password
"""


# The same for a script that needs no password (the line is read and dropped, so that whatever
# follows on stdin is the data).
NO_PASSWORD = PREAMBLE.replace("IFS= read -r password", "IFS= read -r _")


def side(name: str) -> str:
    return name + SIDE_SUFFIX


def old(name: str) -> str:
    return name + OLD_SUFFIX

#!/usr/bin/env bash
# Prints a users file with one admin, for a new cluster:
#   scripts/users.sh TOKEN_SHA256 MADE_BY [PASSWORD_HASH]
# TOKEN_SHA256 is the admin token's hash (vtaskd hash-token); MADE_BY names
# the script that made the file, for its first comment; PASSWORD_HASH (vtaskd
# hash-password) lets the admin log in from vSphere clients too. The roles are the
# ones the README describes: admin holds every privilege, viewer reads.
set -euo pipefail
hash=${1:?usage: scripts/users.sh TOKEN_SHA256 MADE_BY}
made_by=${2:?usage: scripts/users.sh TOKEN_SHA256 MADE_BY}
password=
if [ -n "${3:-}" ]; then
    password="password_hash = \"$3\"
"
fi
cat <<USERS
# Made by $made_by. Add users with: vtaskd hash-token <TOKEN>
[roles]
admin = ["Task.Create", "Task.Update", "Global.CancelTask", "System.View", "Cluster.Admin"]
viewer = ["System.View"]

[[users]]
name = "admin"
token_sha256 = "$hash"
${password}roles = ["admin"]
USERS

# shellcheck shell=bash
# Shared by the stand-ins for blkid, mkfs.ext4, mount and mountpoint: state lives in
# $HOST_DOUBLE_STATE (a temp dir of the test) and every call is logged there, one per line.
set -euo pipefail
state=${HOST_DOUBLE_STATE:?host double: HOST_DOUBLE_STATE is not set}
mkdir -p "$state/fs" "$state/mounted"
printf '%s\n' "$(basename "$0") $*" >>"$state/calls.log"
# A path as one file name.
key() { printf '%s' "${1//\//_}"; }

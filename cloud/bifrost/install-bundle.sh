#!/usr/bin/env bash
# Makes the live bundle directory hold exactly a staged copy of the bundle:
#   bash install-bundle.sh STAGED_BUNDLE LIVE_DIR
# Pulumi's CopyToRemote only creates and overwrites, so it copies each bundle version into a
# fresh staging directory and this script installs it: new and changed files replace the live
# ones by rename (a reader, bash running bootstrap.sh included, never sees half a file), files
# the bundle no longer has are removed (Traefik loads its whole dynamic/ directory, so a stale
# route would stay live), and the env files Pulumi writes separately are kept.
# The live directory stays the same directory: Docker bind mounts (traefik/dynamic) pin a
# directory's inode, so swapping in another directory would leave containers on the old one.
set -euo pipefail

readonly LOCK_TIMEOUT="${BIFROST_LOCK_TIMEOUT:-900}"
# Written by Pulumi beside the bundle, or held by the bootstrap: never removed here.
readonly KEPT=(.env .secrets.env .bootstrap.lock)

log() { printf '[ship] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# step NAME FUNCTION: one log line per step with its duration and what it did.
STEP_NOTE=""
step() {
  local name="$1" started=$SECONDS
  STEP_NOTE=""
  "$2"
  log "${name}: ok in $((SECONDS - started))s${STEP_NOTE:+ (${STEP_NOTE})}"
}

is_kept() {
  local name
  for name in "${KEPT[@]}"; do [[ $1 == "$name" ]] && return 0; done
  return 1
}

# A bootstrap run reads the bundle for minutes: wait for it rather than change files under it.
take_lock() {
  mkdir -p "$LIVE"
  exec {lock_fd}>"$LIVE/.bootstrap.lock"
  flock -w "$LOCK_TIMEOUT" "$lock_fd" || die "a bootstrap run still holds $LIVE/.bootstrap.lock after ${LOCK_TIMEOUT}s"
}

copy_new_and_changed() {
  local rel changed=0
  while IFS= read -r -d '' rel; do
    if [[ -d "$STAGED/$rel" ]]; then
      if [[ ! -d "$LIVE/$rel" ]]; then
        rm -rf -- "${LIVE:?}/$rel"
        mkdir -p -- "$LIVE/$rel"
      fi
      continue
    fi
    [[ -f "$LIVE/$rel" ]] && cmp -s -- "$STAGED/$rel" "$LIVE/$rel" && continue
    [[ -d "$LIVE/$rel" ]] && rm -rf -- "${LIVE:?}/$rel"
    cp -p -- "$STAGED/$rel" "$LIVE/$rel.ship-new"
    mv -f -- "$LIVE/$rel.ship-new" "$LIVE/$rel"
    changed=$((changed + 1))
  done < <(cd "$STAGED" && find . -mindepth 1 -printf '%P\0' | sort -z)
  STEP_NOTE="${changed} file(s) new or changed"
}

remove_stale() {
  local rel removed=0
  # Deepest first, so a directory's contents are judged before the directory.
  while IFS= read -r -d '' rel; do
    is_kept "$rel" && continue
    [[ -e "$STAGED/$rel" ]] && continue
    rm -rf -- "${LIVE:?}/$rel"
    removed=$((removed + 1))
  done < <(cd "$LIVE" && find . -mindepth 1 -depth -printf '%P\0')
  STEP_NOTE="${removed} stale path(s) removed"
}

# Earlier staged versions are of no further use once this one is live.
prune_staging() {
  local version_dir staging_root current pruned=0
  version_dir=$(dirname -- "$STAGED")
  staging_root=$(dirname -- "$version_dir")
  current=$(basename -- "$version_dir")
  for version_dir in "$staging_root"/*/; do
    version_dir=${version_dir%/}
    [[ $(basename -- "$version_dir") == "$current" ]] && continue
    rm -rf -- "$version_dir"
    pruned=$((pruned + 1))
  done
  STEP_NOTE="${pruned} older version(s) removed"
}

main() {
  [[ $# -eq 2 ]] || die "usage: install-bundle.sh STAGED_BUNDLE LIVE_DIR"
  STAGED=$(realpath -e -- "$1") || die "staged bundle $1 does not exist"
  LIVE="$2"
  readonly STAGED LIVE
  [[ -f "$STAGED/docker-compose.yml" ]] || die "$STAGED holds no bundle (no docker-compose.yml)"
  step "wait for the bootstrap lock" take_lock
  step "install new and changed files" copy_new_and_changed
  step "remove files the bundle no longer has" remove_stale
  step "prune older staged versions" prune_staging
}

main "$@"

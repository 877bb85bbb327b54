#!/usr/bin/env bash
# Releases the data volume before Pulumi detaches it (destroy, or a server replacement):
#   bash release-volume.sh DATA_ROOT
# Run on the old server by the delete of the `bifrost-volume-release` command. Hetzner's
# Detach does not wait for anyone, so Postgres must have stopped writing and the filesystem
# must be unmounted first. Safe to run twice, and on a server where nothing ever started.
set -euo pipefail

readonly STOP_TIMEOUT="${BIFROST_STOP_TIMEOUT:-60}"
# Compose labels every container of a project with its name (docker/compose pkg/api/labels.go,
# ProjectLabel); the project is `name: bifrost` in docker-compose.yml.
readonly PROJECT_FILTER="label=com.docker.compose.project=bifrost"

log() { printf '[release] %s\n' "$*" >&2; }

STEP_NOTE=""
step() {
  local name="$1" started=$SECONDS
  STEP_NOTE=""
  "$2"
  log "${name}: ok in $((SECONDS - started))s${STEP_NOTE:+ (${STEP_NOTE})}"
}

# `docker stop` also keeps `restart: unless-stopped` from bringing them back.
stop_containers() {
  if ! command -v docker >/dev/null; then
    STEP_NOTE="docker is not installed"
    return
  fi
  local ids=()
  mapfile -t ids < <(docker ps --quiet --filter "$PROJECT_FILTER")
  if [[ ${#ids[@]} -eq 0 ]]; then
    STEP_NOTE="nothing running"
    return
  fi
  docker stop --time "$STOP_TIMEOUT" "${ids[@]}" >/dev/null
  STEP_NOTE="${#ids[@]} container(s) stopped"
}

unmount_data() {
  if ! mountpoint -q "$DATA_ROOT"; then
    STEP_NOTE="not mounted"
    return
  fi
  sync
  umount "$DATA_ROOT"
  STEP_NOTE="unmounted"
}

main() {
  [[ $# -eq 1 ]] || { log "usage: release-volume.sh DATA_ROOT"; exit 64; }
  DATA_ROOT="$1"
  readonly DATA_ROOT
  step "stop the stack" stop_containers
  step "unmount ${DATA_ROOT}" unmount_data
}

main "$@"

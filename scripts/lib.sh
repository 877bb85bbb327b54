# shellcheck shell=bash
# Shared by the operator scripts (core.sh, secrets.sh, openbao-init.sh): one log line per step
# with its duration, and the checks before a value goes into the SOPS file. The sourcing
# script sets LOG_TAG first.

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# step NAME COMMAND…: one log line per step, with how long it took.
step() {
  local name="$1" started=$SECONDS status=0 outcome=ok
  shift
  log "${name}…"
  "$@" || status=$?
  [[ $status -eq 0 ]] || outcome="failed (exit ${status})"
  log "${name}: ${outcome} in $((SECONDS - started))s"
  return "$status"
}

# `sops set --value-stdin` arrived in sops 3.11.0 (getsops/sops CHANGELOG.md, 3.11.0 Features).
readonly sops_min_major=3 sops_min_minor=11

# sops new enough to take a value on stdin, the age key readable, the file there ($1).
check_sops_for_set() {
  local file="$1" version
  version="$(sops --disable-version-check --version)"
  [[ "$version" =~ ^sops\ ([0-9]+)\.([0-9]+)\. ]] || die "cannot read the sops version from: ${version%%$'\n'*}"
  ((BASH_REMATCH[1] > sops_min_major || (BASH_REMATCH[1] == sops_min_major && BASH_REMATCH[2] >= sops_min_minor))) ||
    die "sops ${BASH_REMATCH[1]}.${BASH_REMATCH[2]} cannot read a value from stdin; install sops ${sops_min_major}.${sops_min_minor} or newer"
  export SOPS_AGE_KEY_FILE="${SOPS_AGE_KEY_FILE:-${HOME}/.config/sops/age/keys.txt}"
  [[ -r "$SOPS_AGE_KEY_FILE" ]] || die "age key not readable at SOPS_AGE_KEY_FILE=${SOPS_AGE_KEY_FILE}"
  [[ -f "$file" ]] || die "${file} missing: create it first (README: First run)"
}

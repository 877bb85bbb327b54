#!/usr/bin/env bash
# Runs Pulumi (or a secrets check) for one stack under `sops exec-env`, so the bootstrap
# secrets exist only in the environment of that one process — never on disk.
set -euo pipefail

project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly project_root
readonly sops_file="secrets/bootstrap.sops.yaml"
readonly actions="up preview destroy refresh check-secrets edit-secrets bundle-render"

log() { printf '[core] %s\n' "$*" >&2; }
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

usage() {
  die "usage: just core <stack> <up|preview|destroy|refresh> [pulumi args…]; stacks: $(known_stacks)"
}

known_stacks() {
  local f names=()
  for f in "${project_root}"/stacks/Pulumi.*.yaml; do
    f="${f##*/Pulumi.}"
    names+=("${f%.yaml}")
  done
  echo "${names[*]}"
}

check_args() {
  local stack="$1" action="$2"
  [[ " ${actions} " == *" ${action} "* ]] || usage
  [[ "$action" == edit-secrets || -f "${project_root}/stacks/Pulumi.${stack}.yaml" ]] ||
    die "no stack config stacks/Pulumi.${stack}.yaml; stacks: $(known_stacks)"
}

check_tools() {
  local action="$1" tool missing=()
  local needed=(sops)
  [[ "$action" == check-secrets || "$action" == edit-secrets || "$action" == bundle-render ]] || needed+=(pulumi)
  for tool in "${needed[@]}"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] || die "not installed: ${missing[*]} (see README: Prerequisites)"
  [[ -d "${project_root}/node_modules" ]] || die "dependencies missing: run npm ci first"
}

check_age_key() {
  export SOPS_AGE_KEY_FILE="${SOPS_AGE_KEY_FILE:-${HOME}/.config/sops/age/keys.txt}"
  [[ -r "$SOPS_AGE_KEY_FILE" ]] || die "age key not readable at SOPS_AGE_KEY_FILE=${SOPS_AGE_KEY_FILE}"
  [[ -f "${project_root}/${sops_file}" ]] ||
    die "${sops_file} missing: copy ${sops_file}.example, fill it in and encrypt it (README: First run)"
}

# Pulumi reads the stack's secrets from the environment sops gives it; nothing is decrypted to a file.
# The command's words go through the environment (scripts/exec-args.sh), not through the
# `/bin/sh -c` string sops runs, so any argument arrives byte for byte.
run_under_sops() {
  local i
  export CORE_ARGC=$#
  for ((i = 1; i <= $#; i++)); do
    export "CORE_ARG_$((i - 1))=${!i}"
  done
  sops exec-env "$sops_file" 'exec bash scripts/exec-args.sh'
}

# preview: Pulumi's structured preview (`--json`, a PreviewDigest: pulumi/pulumi
# pkg/display/json.go) goes through a pipe, never a file, into scripts/preview-summary.ts,
# which lists the changing steps and ends with the review summary (Markdown with --markdown).
preview_with_summary() {
  local stack="$1" format=() args=()
  shift
  local arg
  for arg in "$@"; do
    if [[ "$arg" == --markdown ]]; then format=(--markdown); else args+=("$arg"); fi
  done
  run_under_sops pulumi preview --json --stack "$stack" "${args[@]}" |
    node_modules/.bin/ts-node --transpile-only scripts/preview-summary.ts "$stack" "${format[@]}"
}

main() {
  [[ $# -ge 2 ]] || usage
  local stack="$1" action="$2"
  shift 2
  check_args "$stack" "$action"
  cd "$project_root"
  check_tools "$action"
  check_age_key

  case "$action" in
    edit-secrets)
      step "edit ${sops_file}" sops "$sops_file" ;;
    check-secrets)
      step "check secrets for ${stack}" run_under_sops node_modules/.bin/ts-node --transpile-only scripts/check-secrets.ts "$stack" "$sops_file" ;;
    bundle-render)
      [[ $# -eq 1 ]] || die "usage: just bundle-render <stack> DIR"
      step "render the bundle of ${stack} into $1" run_under_sops node_modules/.bin/ts-node --transpile-only scripts/bundle-render.ts "$stack" "$1" ;;
    preview)
      step "select stack ${stack}" pulumi stack select --create "$stack"
      step "pulumi preview ${stack}" preview_with_summary "$stack" "$@" ;;
    *)
      step "select stack ${stack}" pulumi stack select --create "$stack"
      step "pulumi ${action} ${stack}" run_under_sops pulumi "$action" --stack "$stack" "$@" ;;
  esac
}

main "$@"

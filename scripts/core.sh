#!/usr/bin/env bash
# Runs Pulumi (or a secrets check) for one stack under `sops exec-env`, so the bootstrap
# secrets exist only in the environment of that one process — never on disk.
set -euo pipefail

project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly project_root
# The stack's SOPS file: production's unless the stack is a sandbox (choose_sops_file).
sops_file="secrets/bootstrap.sops.yaml"
readonly actions="up preview destroy refresh check-secrets edit-secrets bundle-render"
# Pulumi's local file backend when no other is configured (README: State backend).
readonly local_state_dir=".pulumi-state"
readonly passphrase_key="PULUMI_CONFIG_PASSPHRASE"
local_backend=0

LOG_TAG=core
# shellcheck source=scripts/lib.sh
source "${project_root}/scripts/lib.sh"

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
  [[ ( "$action" == edit-secrets && "$stack" == - ) || -f "${project_root}/stacks/Pulumi.${stack}.yaml" ]] ||
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
    die "${sops_file} missing: copy secrets/bootstrap.sops.yaml.example, fill it in and encrypt it (README: First run)"
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

# A sandbox stack reads its own SOPS file, never production's; a mismatch between the stack
# and the file its config names stops here, before anything is decrypted (scripts/lib/secretsFiles.ts).
choose_sops_file() {
  local stack="$1"
  [[ "$stack" != - ]] || return 0
  sops_file="$(stack_sops_file "$stack")" || exit 1
  readonly sops_file
}

# No backend configured: Pulumi's local file backend in the project (gitignored), its stack
# secrets encrypted with PULUMI_CONFIG_PASSPHRASE from the SOPS file, so a homelab needs no
# cloud account. A passphrase already in the environment (or its _FILE) is left to Pulumi.
choose_backend() {
  local url
  url="$(configured_backend)" || die "cannot read the configured Pulumi backend"
  if [[ -n "$url" ]]; then
    log "state backend: ${url%%\?*}"
    return 0
  fi
  if passphrase_from_sops "$url"; then
    node_modules/.bin/ts-node --transpile-only scripts/secrets.ts has "$passphrase_key" "$sops_file" ||
      die "no Pulumi backend configured, so the local one in ${local_state_dir}/ is used, and it needs ${passphrase_key} in ${sops_file}: just secrets new ${passphrase_key} (README: State backend)"
  fi
  mkdir -p "$local_state_dir"
  export PULUMI_BACKEND_URL="file://${project_root}/${local_state_dir}"
  local_backend=1
  log "state backend: ${PULUMI_BACKEND_URL} (local files: no PULUMI_BACKEND_URL, no pulumi login)"
}

# Selecting (or creating) a stack in the local backend needs the passphrase: that runs under sops too.
select_stack() {
  local stack="$1"
  if [[ $local_backend -eq 1 ]]; then
    run_under_sops pulumi stack select --create "$stack"
  else
    pulumi stack select --create "$stack"
  fi
}

# preview: Pulumi's structured preview (`--json`, a PreviewDigest: pulumi/pulumi
# pkg/display/json.go) goes through a pipe, never a file, into scripts/preview-summary.ts,
# which lists the changing steps and ends with the review summary (Markdown with --markdown).
# With --diff, Pulumi's own property-by-property display instead, for reading every value change.
preview_with_summary() {
  local stack="$1" format=() args=()
  shift
  local arg
  for arg in "$@"; do
    if [[ "$arg" == --markdown ]]; then format=(--markdown); else args+=("$arg"); fi
  done
  if [[ " ${args[*]} " == *" --diff "* ]]; then
    run_under_sops pulumi preview --stack "$stack" "${args[@]}"
    return
  fi
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
  choose_sops_file "$stack"
  check_age_key

  case "$action" in
    edit-secrets)
      step "edit ${sops_file}" sops "$sops_file" ;;
    check-secrets)
      local url
      url="$(configured_backend)" || die "cannot read the configured Pulumi backend"
      if passphrase_from_sops "$url"; then export CORE_PASSPHRASE_FROM_SOPS=1; else export CORE_PASSPHRASE_FROM_SOPS=0; fi
      step "check secrets for ${stack}" run_under_sops node_modules/.bin/ts-node --transpile-only scripts/check-secrets.ts "$stack" "$sops_file" ;;
    bundle-render)
      [[ $# -eq 1 ]] || die "usage: just bundle-render <stack> DIR"
      step "render the bundle of ${stack} into $1" run_under_sops node_modules/.bin/ts-node --transpile-only scripts/bundle-render.ts "$stack" "$1" ;;
    preview)
      choose_backend
      step "select stack ${stack}" select_stack "$stack"
      step "pulumi preview ${stack}" preview_with_summary "$stack" "$@" ;;
    *)
      choose_backend
      step "select stack ${stack}" select_stack "$stack"
      step "pulumi ${action} ${stack}" run_under_sops pulumi "$action" --stack "$stack" "$@" ;;
  esac
}

main "$@"

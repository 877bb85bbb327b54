#!/usr/bin/env bash
# `just secrets …`: the lifecycle of the values in secrets/bootstrap.sops.yaml and of who can
# decrypt it.
#   new KEY [STACK]          make a value for KEY as the catalog's generator says and store it
#   rotate KEY [STACK]       the same for a KEY that has a value; says what happens first
#   recipients list [STACK]  the age public keys the file is encrypted for (.sops.yaml)
#   recipients add|remove AGE_PUBKEY [STACK]
#                            change them in .sops.yaml and re-encrypt the data key (sops updatekeys)
# The file is production's unless STACK names a sandbox stack, whose own file it then is
# (scripts/secrets-file.ts, the mapping core.sh uses).
# A value goes from the generator (scripts/secrets.ts) through a pipe into `sops set
# --value-stdin`: never on a command line, on disk outside the SOPS file, or on the screen.
set -euo pipefail

project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly project_root
sops_file="secrets/bootstrap.sops.yaml"
readonly sops_config=".sops.yaml"

LOG_TAG=secrets
# shellcheck source=scripts/lib.sh
source "${project_root}/scripts/lib.sh"

usage() {
  die "usage: just secrets new KEY | rotate KEY | recipients list | recipients add AGE_PUBKEY | recipients remove AGE_PUBKEY, each with an optional STACK last"
}

ts() { node_modules/.bin/ts-node --transpile-only scripts/secrets.ts "$@"; }

check_tools() { # $1: "sops" when the command runs sops, else empty
  local tool missing=()
  for tool in node ${1:+"$1"}; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] || die "not installed: ${missing[*]} (see README: Prerequisites)"
  [[ -x node_modules/.bin/ts-node ]] || die "dependencies missing: run npm ci first"
}

check_sops() { check_sops_for_set "$sops_file"; }

# The SOPS file of STACK, as core.sh picks it: a sandbox's own, else production's.
choose_sops_file() {
  local stack="$1"
  [[ -f "stacks/Pulumi.${stack}.yaml" ]] || die "no stack config stacks/Pulumi.${stack}.yaml"
  sops_file="$(stack_sops_file "$stack")" || exit 1
  log "stack ${stack}: ${sops_file}"
}

# Prints "go" or "confirm"; the catalog's account of what happens goes to stderr.
plan() { ts plan "$1" "$2" "$sops_file"; }

# Rotations the catalog marks `with care` (or effective only through another system) need a yes.
confirm() {
  local key="$1" answer=""
  printf '[secrets] rotate %s? Type yes to go on: ' "$key" >&2
  read -r answer || true
  [[ "$answer" == yes ]] || die "${key} not rotated: not confirmed"
}

# generate → pipe → sops: the value exists only in the two processes' memory.
store_generated() {
  local key="$1"
  ts generate "$key" | sops set --value-stdin "$sops_file" "[\"${key}\"]"
}

new_or_rotate() {
  local action="$1" key="$2" decision
  [[ "$key" =~ ^[A-Z][A-Z0-9_]*$ ]] || die "${key@Q} is not a secret key name (A-Z, 0-9, _)"
  step "check sops and ${sops_file}" check_sops
  decision="$(step "check ${action} ${key} against the catalog" plan "$action" "$key")" || die "${action} ${key} refused"
  [[ "$decision" != confirm ]] || confirm "$key"
  step "generate ${key} into ${sops_file}" store_generated "$key"
  log "done: ${key} changed in ${sops_file} (its value was not shown); commit the file"
}

# The file's recipients in .sops.yaml change first; updatekeys then re-encrypts the data key
# for exactly that set (getsops/sops cmd/sops/subcommand/updatekeys/updatekeys.go). When it
# fails, .sops.yaml goes back to what it was, so the two never disagree.
change_recipients() {
  local verb="$1" recipient="$2" previous
  [[ -f "$sops_config" ]] || die "${sops_config} missing (README: First run)"
  step "check sops and ${sops_file}" check_sops
  previous="$(cat "$sops_config")"
  step "${verb} ${recipient} in ${sops_config}" ts recipients "$verb" "$sops_file" "$recipient" || die "${sops_config} unchanged"
  if ! step "re-encrypt the data key of ${sops_file} (sops updatekeys)" sops updatekeys --yes "$sops_file"; then
    printf '%s\n' "$previous" >"$sops_config"
    die "sops updatekeys failed; ${sops_config} restored, ${sops_file} unchanged"
  fi
  log "done: commit ${sops_config} and ${sops_file} together"
}

list_recipients() {
  [[ -f "$sops_config" ]] || die "${sops_config} missing (README: First run)"
  ts recipients list "$sops_file"
}

main() {
  [[ $# -ge 1 ]] || usage
  cd "$project_root"
  # Listing recipients only reads .sops.yaml: it works before sops is installed.
  if [[ "$1 ${2:-}" == "recipients list" ]]; then check_tools; else check_tools sops; fi
  case "$1" in
    new | rotate)
      [[ $# -eq 2 || $# -eq 3 ]] || usage
      [[ $# -eq 2 ]] || choose_sops_file "$3"
      new_or_rotate "$1" "$2" ;;
    recipients)
      case "${2:-}" in
        list)
          [[ $# -eq 2 || $# -eq 3 ]] || usage
          [[ $# -eq 2 ]] || choose_sops_file "$3"
          list_recipients ;;
        add | remove)
          [[ $# -eq 3 || $# -eq 4 ]] || usage
          [[ $# -eq 3 ]] || choose_sops_file "$4"
          change_recipients "$2" "$3" ;;
        *) usage ;;
      esac ;;
    *) usage ;;
  esac
}

main "$@"

#!/usr/bin/env bash
# `just init [STACK]`: everything a first `up` needs that is not the stack config, made once.
#   1. an age key (and its folder) unless one exists at SOPS_AGE_KEY_FILE
#   2. its public key in .sops.yaml, in place of the shipped placeholder
#   3. the stack's SOPS file, created encrypted from a pipe (the plaintext never touches the
#      disk), with every key the catalog can make; PULUMI_CONFIG_PASSPHRASE too when `up`
#      will read it from there (the local backend)
#   4. the keys issued elsewhere (HCLOUD_TOKEN, CLOUDFLARE_API_TOKEN, …): taken from the
#      environment when set there (scripted setups), else asked with hidden input, each checked
#      against the catalog's rule as it is entered
#   5. the git hooks (.githooks/pre-commit), then what is left to edit (`just doctor`)
# Running it again changes nothing that exists: a key with a value is never replaced.
set -euo pipefail

project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly project_root
readonly sops_config=".sops.yaml"
readonly ask_attempts=3

LOG_TAG=init
# shellcheck source=scripts/lib.sh
source "${project_root}/scripts/lib.sh"

ts() { node_modules/.bin/ts-node --transpile-only scripts/secrets.ts "$@"; }

check_tools() {
  local tool missing=()
  for tool in node sops age-keygen; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] || die "not installed: ${missing[*]} (see README: Prerequisites)"
  [[ -x node_modules/.bin/ts-node ]] || die "dependencies missing: run npm ci first"
}

# age-keygen opens its output O_EXCL and makes no folder (FiloSottile/age cmd/age-keygen/keygen.go).
ensure_age_key() {
  if [[ -e "$SOPS_AGE_KEY_FILE" ]]; then
    log "age key: kept ${SOPS_AGE_KEY_FILE}"
    return 0
  fi
  (umask 077 && mkdir -p "$(dirname "$SOPS_AGE_KEY_FILE")")
  age-keygen -o "$SOPS_AGE_KEY_FILE" 2>/dev/null
  log "age key: made ${SOPS_AGE_KEY_FILE} (keep a copy somewhere safe: without it nobody can decrypt the secrets)"
}

claim_recipient() {
  local recipient
  recipient="$(age-keygen -y "$SOPS_AGE_KEY_FILE")" || die "cannot read the public key of ${SOPS_AGE_KEY_FILE}"
  [[ -f "$sops_config" ]] || die "${sops_config} missing"
  ts recipients claim "$sops_file" "$recipient"
}

# → PLAN_GENERATE, PLAN_ASK: the keys init still has to put into the SOPS file.
read_plan() {
  local file="-" from_sops=0 url verb key
  [[ ! -f "$sops_file" ]] || file="$sops_file"
  url="$(configured_backend)" || die "cannot read the configured Pulumi backend"
  if passphrase_from_sops "$url"; then from_sops=1; fi
  PLAN_GENERATE=()
  PLAN_ASK=()
  while read -r verb key; do
    if [[ "$verb" == generate ]]; then PLAN_GENERATE+=("$key"); else PLAN_ASK+=("$key"); fi
  done < <(ts init-plan "$kind" "$file" "$from_sops")
}

# The new file's values go through a pipe into `sops encrypt` (stdin needs --filename-override,
# which also picks the creation rule: getsops.io docs, usage/advanced); only the encrypted
# result is written, then moved into place. The asked values reach the generator through its
# environment (exported for that one command), never its command line.
create_secrets_file() {
  local tmp key status=0
  tmp="$(mktemp "${sops_file}.XXXXXX")"
  for key in "${PLAN_ASK[@]}"; do export "${key}=${ASKED[$key]}"; done
  ts init-document "${PLAN_GENERATE[@]}" "${PLAN_ASK[@]}" | sops encrypt --filename-override "$sops_file" >"$tmp" || status=$?
  for key in "${PLAN_ASK[@]}"; do unset "$key"; done
  if ((status != 0)); then
    rm -f "$tmp"
    return "$status"
  fi
  mv -f "$tmp" "$sops_file"
}

# Into an existing file, one key at a time (`sops set --value-stdin`, as `just secrets new` does).
add_missing() {
  local key
  for key in "${PLAN_GENERATE[@]}"; do
    ts generate "$key" | sops set --value-stdin "$sops_file" "[\"${key}\"]" 2>/dev/null
  done
  for key in "${PLAN_ASK[@]}"; do
    printf '%s' "${ASKED[$key]}" | ts json | sops set --value-stdin "$sops_file" "[\"${key}\"]" 2>/dev/null
  done
}

# A value from the environment (scripted setups) or a hidden prompt, checked against the
# catalog's rule; never echoed, never an argument.
ask_value() { # $1: key → ASKED[$1]
  local key="$1" attempt value="${!1:-}"
  if [[ -n "$value" ]]; then
    printf '%s' "$value" | ts check "$key" || die "${key} from the environment refused (above)"
    ASKED[$key]="$value"
    return 0
  fi
  [[ -t 0 ]] || die "${key} is needed: set it in the environment for a non-interactive init, or run init in a terminal"
  for ((attempt = 1; attempt <= ask_attempts; attempt++)); do
    read -rsp "[init] ${key} (input hidden): " value
    printf '\n' >&2
    if printf '%s' "$value" | ts check "$key"; then
      ASKED[$key]="$value"
      return 0
    fi
  done
  die "${key}: no valid value after ${ask_attempts} attempts"
}

install_hooks() {
  if git rev-parse --git-dir >/dev/null 2>&1; then
    git config core.hooksPath .githooks
    log "git hooks: .githooks (pre-commit refuses a secrets file without sops metadata)"
  else
    log "git hooks: not a git checkout, skipped"
  fi
}

main() {
  [[ $# -le 1 ]] || die "usage: just init [STACK]"
  local stack="${1:-hetzner}" kind key
  cd "$project_root"
  check_tools
  [[ -f "stacks/Pulumi.${stack}.yaml" ]] || die "no stack config stacks/Pulumi.${stack}.yaml"
  sops_file="$(stack_sops_file "$stack")" || exit 1
  kind="$(ts kind "$stack")" || exit 1
  export SOPS_AGE_KEY_FILE="${SOPS_AGE_KEY_FILE:-${HOME}/.config/sops/age/keys.txt}"

  # Every value is asked for and checked first: bad input stops init before anything is made.
  read_plan
  declare -gA ASKED=()
  for key in "${PLAN_ASK[@]}"; do ask_value "$key"; done
  step "age key" ensure_age_key
  step "recipient in ${sops_config}" claim_recipient
  if [[ ! -f "$sops_file" ]]; then
    step "create ${sops_file}: generated ${PLAN_GENERATE[*]:-nothing}; given ${PLAN_ASK[*]:-nothing}" create_secrets_file
  elif ((${#PLAN_GENERATE[@]} + ${#PLAN_ASK[@]} > 0)); then
    step "add to ${sops_file}: generated ${PLAN_GENERATE[*]:-nothing}; given ${PLAN_ASK[*]:-nothing}" add_missing
  else
    log "${sops_file}: every key the stack needs has a value; nothing changed"
  fi
  step "git hooks" install_hooks
  log "done: commit ${sops_config} and ${sops_file}; what is left to edit in stacks/Pulumi.${stack}.yaml:"
  node_modules/.bin/ts-node --transpile-only scripts/doctor.ts "$stack" || true
}

main "$@"

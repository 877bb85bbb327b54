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

# The SOPS file stack $1 reads (scripts/secrets-file.ts), printed; dies with the reason when
# the stack's mapping is refused, or with one line naming the file and line when the stack's
# config is not valid YAML (secrets-file.ts exit 3).
stack_sops_file() {
  local out rc=0
  out="$(node_modules/.bin/ts-node --transpile-only scripts/secrets-file.ts "$1")" || rc=$?
  ((rc != 3)) || die "$out"
  ((rc == 0)) || die "stack $1: refused its secrets file (see above)"
  printf '%s\n' "$out"
}

# The backend Pulumi would use, in Pulumi's own order (pulumi/pulumi pkg/workspace/creds.go,
# GetCurrentCloudURLWithSource): PULUMI_BACKEND_URL, then Pulumi.yaml's backend.url, then the
# "current" backend `pulumi login` stored in credentials.json (sdk/go/common/workspace/creds.go:
# under PULUMI_CREDENTIALS_PATH, else PULUMI_HOME, else ~/.pulumi). Prints it, or nothing.
configured_backend() {
  # shellcheck disable=SC2016 # JavaScript, not shell.
  node -e '
    const fs = require("fs"), path = require("path");
    if (process.env.PULUMI_BACKEND_URL) { console.log(process.env.PULUMI_BACKEND_URL); process.exit(0); }
    const project = require("yaml").parse(fs.readFileSync("Pulumi.yaml", "utf8")) ?? {};
    if (project.backend?.url) { console.log(project.backend.url); process.exit(0); }
    const dir = process.env.PULUMI_CREDENTIALS_PATH || process.env.PULUMI_HOME || path.join(require("os").homedir(), ".pulumi");
    let creds = {};
    try { creds = JSON.parse(fs.readFileSync(path.join(dir, "credentials.json"), "utf8")); } catch {}
    if (creds.current) console.log(creds.current);
  '
}

# Whether `up` would take PULUMI_CONFIG_PASSPHRASE from the SOPS file: the local backend is
# used (no other configured) and no passphrase (or its _FILE) is already in the environment.
# check-secrets asks the same question, so it requires the passphrase exactly when `up` does.
passphrase_from_sops() { # $1: the configured backend, or empty
  [[ -z "$1" && -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]
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

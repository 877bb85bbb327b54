#!/usr/bin/env bash
# Bifrost bootstrap: brings up the stack of docker-compose.yml step by step, each step gated
# on the health of its services, and converges to the same state from any earlier run,
# including one interrupted at any point. Pulumi runs it as `bash /etc/bifrost/bootstrap.sh`
# after writing .env and .secrets.env (both rendered by components/render.ts).
#
# Secrets: values are read from the env files with the parser below (never `source`d: the
# files are data, not shell), are never passed on a command line and never printed. Every
# function that touches a value turns xtrace off for its own duration (`local -`), so even
# `bash -x bootstrap.sh` shows none.
set -euo pipefail
# bash 5.2 turns an unquoted `&` in a ${var//pattern/replacement} replacement into the
# matched text and lets backslashes escape it; values must be substituted verbatim.
shopt -u patsub_replacement 2>/dev/null || true

readonly BIFROST_DIR="${BIFROST_DIR:-/etc/bifrost}"
readonly FSTAB="${BIFROST_FSTAB:-/etc/fstab}"
readonly CLOUD_INIT_MARKER="${BIFROST_CLOUD_INIT_MARKER:-/var/lib/cloud/instance/boot-finished}"
readonly WAIT_TIMEOUT="${BIFROST_WAIT_TIMEOUT:-300}"
readonly LOCK_TIMEOUT="${BIFROST_LOCK_TIMEOUT:-900}"
readonly MINT_ATTEMPTS="${BIFROST_MINT_ATTEMPTS:-60}"
readonly MINT_RETRY_DELAY="${BIFROST_MINT_RETRY_DELAY:-1}"
readonly LOG_TAIL_LINES=50
readonly NETBIRD_CONFIG="netbird/config.yaml"
# Compose does not notice a bind-mounted file changing: this marker survives an interruption
# between rendering a changed config and restarting the service that mounts it.
readonly NETBIRD_RESTART_PENDING="netbird/.config.yaml.restart-pending"

# Runs inside authentik-server through `ak shell` (stdin): the Authentik API token the
# bootstrap uses, keyed by AUTHENTIK_TOKEN. The key is read from the container's own
# environment, so it never appears on a command line.
readonly MINT_SNIPPET='import os
from authentik.core.models import Token, TokenIntents, User

key = os.environ["AUTHENTIK_BOOTSTRAP_TOKEN"]
user = User.objects.get(username="akadmin")
token, _ = Token.objects.get_or_create(
    identifier="netbird-mgmt-token",
    defaults={"user": user, "intent": TokenIntents.INTENT_API, "expiring": False, "key": key},
)
if token.key != key or token.user_id != user.pk or token.intent != TokenIntents.INTENT_API or token.expiring:
    token.key = key
    token.user = user
    token.intent = TokenIntents.INTENT_API
    token.expiring = False
    token.save()
print("TOKEN:" + token.key)'

declare -A CONF=()  # every NAME="value" of .env and .secrets.env
PROFILES=()         # --profile arguments of the enabled optional services
DATA=""             # BIFROST_DATA, the data root
MINTED_TOKEN=""
FINGERPRINT_KEY=""
CURRENT_STEP=""
STEP_STARTED=0
STEP_NOTE=""
RUN_STARTED=0

UNESCAPED=""
FINGERPRINT=""

# EPOCHREALTIME's separator follows the locale's decimal point.
now_micros() { printf '%s' "${EPOCHREALTIME/[^0-9]/}"; }

log() { printf '[bootstrap] %s\n' "$*"; }
die() {
  printf '[bootstrap] ERROR: %s\n' "$*" >&2
  exit 1
}

since() { # $1: start in µs → "1.23s"
  local micros=$(($(now_micros) - $1))
  printf '%d.%02ds' $((micros / 1000000)) $((micros % 1000000 / 10000))
}

on_exit() {
  local rc=$?
  if ((rc != 0)) && [[ -n $CURRENT_STEP ]]; then
    printf '[bootstrap] step %s: FAILED after %s\n' "$CURRENT_STEP" "$(since "$STEP_STARTED")" >&2
  fi
}

step() { # $1: step name, rest: the command that performs it
  CURRENT_STEP=$1
  STEP_NOTE=""
  STEP_STARTED=$(now_micros)
  shift
  "$@"
  log "step ${CURRENT_STEP}: ok${STEP_NOTE:+, $STEP_NOTE} ($(since "$STEP_STARTED"))"
  CURRENT_STEP=""
}

acquire_lock() {
  local lock_fd
  exec {lock_fd}>"$BIFROST_DIR/.bootstrap.lock"
  if ! flock --nonblock "$lock_fd"; then
    log "another bootstrap run holds the lock; waiting up to ${LOCK_TIMEOUT}s"
    flock --wait "$LOCK_TIMEOUT" "$lock_fd" ||
      die "another bootstrap run still holds $BIFROST_DIR/.bootstrap.lock after ${LOCK_TIMEOUT}s"
  fi
}

compose() {
  docker compose --env-file .env --env-file .secrets.env "${PROFILES[@]}" "$@"
}

# --- env files ---------------------------------------------------------------------------

# The exact reverse of components/render.ts quoteEnvValue: inside double quotes only \\, \"
# and \$ are escapes; anything else that render.ts cannot produce is rejected.
env_unescape() { # $1: text between the quotes → UNESCAPED; returns 1 when malformed
  local -
  set +x
  local rest=$1 escape='^([^\"]*)\\([\"$])(.*)$'
  UNESCAPED=""
  while [[ $rest =~ $escape ]]; do
    UNESCAPED+=${BASH_REMATCH[1]}${BASH_REMATCH[2]}
    rest=${BASH_REMATCH[3]}
  done
  [[ $rest != *[\\\"]* ]] || return 1
  UNESCAPED+=$rest
}

load_env_file() { # $1: file name in BIFROST_DIR
  local -
  set +x
  local file=$1 line name number=0 assignment='^([A-Za-z_][A-Za-z0-9_]*)="(.*)"$'
  [[ -f $file ]] || die "$BIFROST_DIR/$file is missing"
  while IFS= read -r line || [[ -n $line ]]; do
    number=$((number + 1))
    [[ -z $line || $line == \#* ]] && continue
    [[ $line =~ $assignment ]] || die "$file line $number is not NAME=\"value\""
    name=${BASH_REMATCH[1]}
    env_unescape "${BASH_REMATCH[2]}" || die "$file line $number ($name) has a stray quote or backslash"
    CONF[$name]=$UNESCAPED
  done <"$file"
}

has_value() { # $1: name → true when it is set and non-empty
  local -
  set +x
  [[ -n ${CONF[$1]-} ]]
}

write_atomically() { # $1: target, $2: mode, $3: content
  local -
  set +x
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  chmod "$2" "$tmp"
  printf '%s' "$3" >"$tmp"
  mv -f "$tmp" "$1"
}

# --- pre-flight --------------------------------------------------------------------------

wait_for_cloud_init() {
  local rc=0
  if command -v cloud-init >/dev/null; then
    # 2 means finished with recoverable errors (deprecation warnings and the like).
    timeout "$WAIT_TIMEOUT" cloud-init status --wait >/dev/null || rc=$?
    ((rc == 0 || rc == 2)) || die "cloud-init did not finish successfully (cloud-init status exit $rc)"
  fi
  [[ -e $CLOUD_INIT_MARKER ]] || die "cloud-init has not finished: $CLOUD_INIT_MARKER is missing"
}

check_tools() {
  local tool missing=()
  for tool in docker openssl flock timeout; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]}"
  docker compose version >/dev/null 2>&1 || die "'docker compose version' failed: the Compose v2 plugin is not installed"
}

check_required_secrets() {
  local -
  set +x
  local key keys=() missing=()
  has_value BIFROST_REQUIRED_SECRETS || die ".env does not list BIFROST_REQUIRED_SECRETS"
  read -r -a keys <<<"${CONF[BIFROST_REQUIRED_SECRETS]}"
  for key in "${keys[@]}"; do
    has_value "$key" || missing+=("$key")
  done
  ((${#missing[@]} == 0)) || die "required secrets missing or empty in .env/.secrets.env: ${missing[*]}"
}

select_profiles() {
  if has_value NB_PROXY_TOKEN; then PROFILES+=(--profile proxy); fi
  if has_value NB_BIFROST_SETUP_KEY; then PROFILES+=(--profile agent); fi
  return 0
}

preflight() {
  wait_for_cloud_init
  check_tools
  load_env_file .env
  load_env_file .secrets.env
  check_required_secrets
  select_profiles
  DATA=${CONF[BIFROST_DATA]:-/var/lib/bifrost}
}

# --- data volume -------------------------------------------------------------------------

persist_in_fstab() { # $1: device, $2: filesystem type
  local entry="$1 $DATA $2 defaults,nofail 0 2" line kept="" current=""
  if [[ -f $FSTAB ]]; then
    current=$(<"$FSTAB")$'\n'
    while IFS= read -r line || [[ -n $line ]]; do
      [[ $line == "$1"[[:space:]]* ]] || kept+=$line$'\n'
    done <"$FSTAB"
  fi
  kept+=$entry$'\n'
  [[ $kept != "$current" ]] || return 0
  write_atomically "$FSTAB" 0644 "$kept"
  STEP_NOTE+="${STEP_NOTE:+, }fstab updated"
}

mount_data_volume() {
  local device fstype rc=0
  if ! has_value BIFROST_VOLUME_DEVICE; then
    STEP_NOTE="no volume configured, data stays on the root disk"
    return 0
  fi
  device=${CONF[BIFROST_VOLUME_DEVICE]}
  [[ $device == /dev/disk/by-id/* ]] || die "BIFROST_VOLUME_DEVICE must be a stable /dev/disk/by-id/ path, got $device"
  mkdir -p "$DATA"
  # blkid exits 2 when the device carries no filesystem it recognises.
  fstype=$(blkid -o value -s TYPE "$device") || rc=$?
  if ((rc == 2)); then
    mountpoint -q "$DATA" && die "$DATA is mounted but blkid finds no filesystem on $device"
    mkfs.ext4 -q -L bifrost-data "$device"
    fstype=ext4
    STEP_NOTE="formatted $device as ext4"
  elif ((rc != 0)); then
    die "blkid could not read $device (exit $rc)"
  fi
  if mountpoint -q "$DATA"; then
    STEP_NOTE+="${STEP_NOTE:+, }already mounted"
  else
    mount -t "$fstype" "$device" "$DATA"
    STEP_NOTE+="${STEP_NOTE:+, }mounted $device on $DATA"
  fi
  persist_in_fstab "$device" "$fstype"
}

# Bind-mounted directories of images that run as uid 1000: Docker would create a missing one
# owned by root and the container could not write to it. Authentik's image runs as uid 1000
# (goauthentik/authentik Dockerfile `USER 1000`; lifecycle/ak only fixes /media's owner when
# started as root) and netbird-proxy's as netbird, uid 1000 (netbirdio/netbird v0.77.1
# proxy/Dockerfile `USER netbird:netbird`).
readonly UID_1000_DIRS=(authentik/media netbird-proxy/certs)

prepare_data_dirs() {
  local dir changed=()
  for dir in "${UID_1000_DIRS[@]}"; do
    mkdir -p "$DATA/$dir"
    if [[ $(stat -c '%u:%g' "$DATA/$dir") != 1000:1000 ]]; then
      chown 1000:1000 "$DATA/$dir"
      changed+=("$dir")
    fi
  done
  if ((${#changed[@]} > 0)); then STEP_NOTE="owner set to 1000:1000: ${changed[*]}"; else STEP_NOTE="unchanged"; fi
}

# --- keyed fingerprints ------------------------------------------------------------------

# HMAC-SHA-256 under a random per-host key kept beside the data, so a fingerprint neither
# reveals the value nor can be checked against guesses without that key. The secret goes to
# openssl on stdin; only the (non-catalog) fingerprint key is on its command line.
fingerprint_of() { # $1: name → FINGERPRINT
  local -
  set +x
  local key_file="$DATA/.fingerprint-key" digest
  if [[ -z $FINGERPRINT_KEY ]]; then
    mkdir -p "$DATA"
    [[ -s $key_file ]] || write_atomically "$key_file" 0600 "$(openssl rand -hex 32)"
    FINGERPRINT_KEY=$(<"$key_file")
  fi
  digest=$(printf '%s' "${CONF[$1]}" | openssl dgst -sha256 -hmac "$FINGERPRINT_KEY" -r)
  FINGERPRINT=${digest%% *}
}

# --- services ----------------------------------------------------------------------------

report_unhealthy() { # services of the failed step
  local service status failing=()
  for service in "$@"; do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$service" 2>/dev/null) || status=missing
    [[ $status == healthy ]] || failing+=("$service")
  done
  ((${#failing[@]} > 0)) || failing=("$@")
  for service in "${failing[@]}"; do
    printf '[bootstrap] last %d log lines of %s:\n' "$LOG_TAIL_LINES" "$service" >&2
    compose logs --no-color --tail "$LOG_TAIL_LINES" "$service" >&2 || true
  done
  die "${failing[*]} did not become healthy within ${WAIT_TIMEOUT}s"
}

start_services() { # services, started together and waited for by Compose
  local rc=0
  compose up --detach --wait --wait-timeout "$WAIT_TIMEOUT" "$@" || rc=$?
  ((rc == 0)) || report_unhealthy "$@"
}

pull_images() {
  # Compose pulls every image of the enabled services in parallel.
  compose pull --quiet
}

start_optional() { # $1: service, $2: the secret it needs, $3: the compose profile it is in
  if has_value "$2"; then
    start_services "$1"
    return 0
  fi
  STEP_NOTE="skipped: add $2 to secrets/bootstrap.sops.yaml and run 'just core hetzner up' to enable $1"
  # A secret taken out of SOPS must not live on in a container started with it earlier.
  if [[ -n $(compose --profile "$3" ps --all --quiet "$1") ]]; then
    compose --profile "$3" rm --stop --force "$1" >/dev/null
    STEP_NOTE+="; the running $1 was removed"
  fi
}

# --- authentik ---------------------------------------------------------------------------

# Postgres reads POSTGRES_PASSWORD only when it initialises its data directory, so a rotated
# AUTHENTIK_POSTGRESQL_PASSWORD has to be set on the role inside the running database before
# authentik-server and -worker come back with it. Unknown (no fingerprint yet) counts as
# changed: setting the current password again is harmless.
sync_postgres_password() {
  local -
  set +x
  local record="$DATA/authentik-postgres.password.hmac" password sql
  fingerprint_of AUTHENTIK_POSTGRESQL_PASSWORD
  if [[ -f $record && $(<"$record") == "$FINGERPRINT" ]]; then
    STEP_NOTE="unchanged"
    return 0
  fi
  password=${CONF[AUTHENTIK_POSTGRESQL_PASSWORD]}
  sql="ALTER ROLE authentik WITH PASSWORD '${password//\'/\'\'}';"
  docker exec -i authentik-postgres psql -v ON_ERROR_STOP=1 --quiet --no-psqlrc \
    --username=authentik --dbname=authentik <<<"$sql" >/dev/null
  write_atomically "$record" 0600 "$FINGERPRINT"
  STEP_NOTE="role password set"
}

mint_mgmt_token() {
  local -
  set +x
  local attempt output errors token_line=$'(^|\n)TOKEN:([^\n]+)'
  errors=$(mktemp)
  for ((attempt = 1; attempt <= MINT_ATTEMPTS; attempt++)); do
    # Retried: Django answers only once migrations ran and the worker created akadmin.
    if output=$(docker exec -i authentik-server ak shell <<<"$MINT_SNIPPET" 2>"$errors") &&
      [[ $output =~ $token_line ]]; then
      MINTED_TOKEN=${BASH_REMATCH[2]}
      rm -f "$errors"
      # The token Authentik holds must carry the key the bootstrap will authenticate with.
      [[ $MINTED_TOKEN == "${CONF[AUTHENTIK_TOKEN]}" ]] ||
        die "the Authentik API token minted in authentik-server does not carry AUTHENTIK_TOKEN's value"
      STEP_NOTE="attempt $attempt"
      return 0
    fi
    if ((attempt < MINT_ATTEMPTS)); then sleep "$MINT_RETRY_DELAY"; fi
  done
  printf '[bootstrap] last error of ak shell:\n' >&2
  tail -n "$LOG_TAIL_LINES" "$errors" >&2
  rm -f "$errors"
  die "could not mint the NetBird management token in authentik-server after $MINT_ATTEMPTS attempts"
}

# --- netbird -----------------------------------------------------------------------------

guard_netbird_store_key() {
  local -
  set +x
  local record="$DATA/netbird/.store-key.hmac"
  fingerprint_of NB_DATA_STORE_KEY
  if [[ ! -f $record ]]; then
    mkdir -p "$DATA/netbird"
    write_atomically "$record" 0600 "$FINGERPRINT"
    STEP_NOTE="fingerprint recorded"
    return 0
  fi
  [[ $(<"$record") == "$FINGERPRINT" ]] || die "NB_DATA_STORE_KEY no longer matches the key NetBird's existing database" \
    "in $DATA/netbird was encrypted with; netbird-server was not started and nothing was changed." \
    "To recover, restore the previous NB_DATA_STORE_KEY in secrets/bootstrap.sops.yaml and run 'just core hetzner up' again;" \
    "or, to start over, delete $DATA/netbird (this loses every peer, setup key and policy) and run it again."
  STEP_NOTE="matches"
}

# Each placeholder (a dollar sign and a NAME in braces) is replaced, in one left-to-right
# pass, by the value of NAME from the env files, escaped for the YAML single-quoted scalar it
# stands in: a value is never re-scanned, so no character in it is special.
render_netbird_config() {
  local -
  set +x
  local rest out="" placeholder value tmp placeholder_re='\$\{([A-Za-z_][A-Za-z0-9_]*)\}'
  rest=$(<"$NETBIRD_CONFIG.tmpl")
  while [[ $rest =~ $placeholder_re ]]; do
    placeholder=${BASH_REMATCH[0]}
    [[ -v "CONF[${BASH_REMATCH[1]}]" ]] ||
      die "$NETBIRD_CONFIG.tmpl uses ${BASH_REMATCH[1]}, which neither .env nor .secrets.env defines"
    value=${CONF[${BASH_REMATCH[1]}]}
    out+=${rest%%"$placeholder"*}${value//\'/\'\'}
    rest=${rest#*"$placeholder"}
  done
  out+=$rest$'\n'
  rm -f "$NETBIRD_CONFIG".??????
  tmp=$(mktemp "$NETBIRD_CONFIG.XXXXXX")
  chmod 0600 "$tmp"
  printf '%s' "$out" >"$tmp"
  if [[ -f $NETBIRD_CONFIG ]] && cmp -s "$tmp" "$NETBIRD_CONFIG"; then
    rm -f "$tmp"
    STEP_NOTE="unchanged"
    return 0
  fi
  : >"$NETBIRD_RESTART_PENDING"
  mv -f "$tmp" "$NETBIRD_CONFIG"
  STEP_NOTE="changed"
}

start_netbird_server() {
  if [[ -e $NETBIRD_RESTART_PENDING ]] && [[ -n $(compose ps --all --quiet netbird-server) ]]; then
    compose restart netbird-server >/dev/null
    STEP_NOTE="restarted for the new $NETBIRD_CONFIG"
  fi
  start_services netbird-server
  rm -f "$NETBIRD_RESTART_PENDING"
}

main() {
  RUN_STARTED=$(now_micros)
  cd "$BIFROST_DIR"
  trap on_exit EXIT
  acquire_lock
  step preflight preflight
  step volume mount_data_volume
  # Before anything is pulled, started or changed: a wrong key leaves the install untouched.
  step netbird-store-key guard_netbird_store_key
  step data-dirs prepare_data_dirs
  step pull pull_images
  step traefik start_services traefik
  step authentik-postgres start_services authentik-postgres
  step postgres-password sync_postgres_password
  step authentik start_services authentik-server authentik-worker
  step mint-token mint_mgmt_token
  step netbird-config render_netbird_config
  step netbird-server start_netbird_server
  step netbird-dashboard start_services netbird-dashboard
  step netbird-proxy start_optional netbird-proxy NB_PROXY_TOKEN proxy
  step netbird-agent start_optional netbird-agent NB_BIFROST_SETUP_KEY agent
  log "bifrost is up ($(since "$RUN_STARTED"))"
}

main "$@"

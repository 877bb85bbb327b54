#!/usr/bin/env bash
# Bifrost bootstrap: brings up the stack of docker-compose.yml and wires NetBird to Authentik,
# following the step graph of bootstrap.graph (independent steps run at the same time), each
# start gated on the health of its services, and converges to the same state from any earlier
# run, including one interrupted at any point. Pulumi runs it as `bash /etc/bifrost/bootstrap.sh`
# after writing .env and .secrets.env (both rendered by components/render.ts).
#
# Files: Pulumi owns /etc/bifrost and this script never writes there (but for its lock).
# What the bootstrap renders, mints and records lives under the data root (BIFROST_DATA, the
# kept volume): the rendered NetBird config, the keyed fingerprints, and bootstrap-state.json
# (mode 0600: NetBird's PAT and the tokens minted through it), so a new server on the old
# volume finds them and never runs NetBird's first-boot setup again.
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
readonly API_RETRY_DELAY="${BIFROST_API_RETRY_DELAY:-2}"
readonly LOG_TAIL_LINES=50
# The HTTP APIs, published on the host's loopback only (docker-compose.yml `ports`): the
# bootstrap reaches them without Traefik, and NetBird's unauthenticated /api/setup is never
# reachable from outside (Traefik refuses it: traefik/dynamic/bifrost.yml netbird-setup-blocked).
readonly NETBIRD_API="${BIFROST_NETBIRD_API:-http://127.0.0.1:8081}"
readonly AUTHENTIK_API="${BIFROST_AUTHENTIK_API:-http://127.0.0.1:9000}"
readonly GRAPH_FILE="bootstrap.graph"
# Where Authentik's containers see the blueprint (docker-compose.yml mounts authentik/blueprints).
readonly NETBIRD_BLUEPRINT="/blueprints/custom/netbird.yaml"
# NetBird's PAT from /api/setup expires (at most 365 days: management/server/account/pat.go);
# the bootstrap renews it when fewer days than this are left.
readonly PAT_DAYS=365
readonly PAT_RENEW_DAYS=30

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

# Runs inside authentik-server through `ak shell` (stdin): akadmin's password follows
# AUTHENTIK_BOOTSTRAP_PASSWORD, which Authentik itself reads only at its first start
# (blueprints/system/bootstrap.yaml). Read from the container's environment, never a command line.
readonly ADMIN_PASSWORD_SNIPPET='import os
from authentik.core.models import User

password = os.environ["AUTHENTIK_BOOTSTRAP_PASSWORD"]
user = User.objects.get(username="akadmin")
if user.check_password(password):
    print("PASSWORD:unchanged")
else:
    user.set_password(password)
    user.save()
    print("PASSWORD:set")'

declare -A CONF=()  # every NAME="value" of .env and .secrets.env
DATA=""             # BIFROST_DATA, the data root
STATE_FILE=""       # $DATA/bootstrap-state.json
NETBIRD_CONFIG=""   # $DATA/netbird-config/config.yaml, mounted into netbird-server
# Compose does not notice a mounted file changing: this marker survives an interruption
# between rendering a changed config and restarting the service that reads it.
NETBIRD_RESTART_PENDING=""
MINTED_TOKEN=""
MINTED=""
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

# Compose interpolates from the process environment before the env files (compose-go
# WithDotEnv; conformance: test/conformance/compose.test.ts), which is how a proxy token or
# setup key minted into the state file reaches its container when SOPS has none. Every call
# passes the same values, so Compose sees the same configuration every time.
compose() {
  local -
  set +x
  NB_PROXY_TOKEN=$(effective_token NB_PROXY_TOKEN .netbird.proxy_token) \
    NB_BIFROST_SETUP_KEY=$(effective_token NB_BIFROST_SETUP_KEY .netbird.setup_key) \
    docker compose --env-file .env --env-file .secrets.env "$@"
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
  for tool in docker openssl flock timeout curl jq; do
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

check_graph() {
  [[ -f $GRAPH_FILE ]] || die "$BIFROST_DIR/$GRAPH_FILE is missing"
  load_graph
}

preflight() {
  wait_for_cloud_init
  check_tools
  load_env_file .env
  load_env_file .secrets.env
  check_required_secrets
  check_graph
  DATA=${CONF[BIFROST_DATA]:-/var/lib/bifrost}
  STATE_FILE=$DATA/bootstrap-state.json
  NETBIRD_CONFIG=$DATA/netbird-config/config.yaml
  NETBIRD_RESTART_PENDING=$DATA/netbird-config/.restart-pending
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

step_volume() {
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

step_data_dirs() {
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

# --- authentik ---------------------------------------------------------------------------

# Postgres reads POSTGRES_PASSWORD only when it initialises its data directory, so a rotated
# AUTHENTIK_POSTGRESQL_PASSWORD has to be set on the role inside the running database before
# authentik-server and -worker come back with it. Unknown (no fingerprint yet) counts as
# changed: setting the current password again is harmless.
step_postgres_password() {
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

step_authentik_token() {
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
  die "could not mint the Authentik API token in authentik-server after $MINT_ATTEMPTS attempts"
}

# --- netbird -----------------------------------------------------------------------------

step_netbird_store_key() {
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
step_netbird_config() {
  local -
  set +x
  local rest out="" placeholder value tmp placeholder_re='\$\{([A-Za-z_][A-Za-z0-9_]*)\}'
  rest=$(<netbird/config.yaml.tmpl)
  while [[ $rest =~ $placeholder_re ]]; do
    placeholder=${BASH_REMATCH[0]}
    [[ -v "CONF[${BASH_REMATCH[1]}]" ]] ||
      die "netbird/config.yaml.tmpl uses ${BASH_REMATCH[1]}, which neither .env nor .secrets.env defines"
    value=${CONF[${BASH_REMATCH[1]}]}
    out+=${rest%%"$placeholder"*}${value//\'/\'\'}
    rest=${rest#*"$placeholder"}
  done
  out+=$rest$'\n'
  mkdir -p "${NETBIRD_CONFIG%/*}"
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

# --- bootstrap state (the data root's bootstrap-state.json) -----------------------------

# Steps run at the same time, so every read-modify-write holds the state's lock. Values reach
# jq through its environment (never its command line) and leave it on stdout only.
state_get() { # $1: jq path → the value, or nothing
  local -
  set +x
  [[ -f $STATE_FILE ]] || return 0
  jq -r "$1 // empty" "$STATE_FILE"
}

state_set() { # $1: jq path, $2: value (a string)
  local -
  set +x
  local lock_fd current='{}'
  exec {lock_fd}>"$STATE_FILE.lock"
  flock "$lock_fd"
  [[ -f $STATE_FILE ]] && current=$(<"$STATE_FILE")
  write_atomically "$STATE_FILE" 0600 "$(STATE_VALUE=$2 jq "$1 = env.STATE_VALUE" <<<"$current")"$'\n'
  exec {lock_fd}>&-
}

# A token from SOPS wins; else the one minted earlier into the state file; else nothing.
effective_token() { # $1: catalog key, $2: state path
  local -
  set +x
  if has_value "$1"; then
    printf '%s' "${CONF[$1]}"
  elif [[ -n $STATE_FILE ]]; then
    state_get "$2"
  fi
}

# --- HTTP APIs ---------------------------------------------------------------------------

# curl with the token in a header read from a file descriptor, never on its command line
# (the process substitution must stand on curl's own command line to stay open for it); a
# request body, when given, comes on stdin. Prints the response body.
api() { # $1: METHOD, $2: URL, $3: "Token …", "Bearer …" or empty, $4: body or empty
  local -
  set +x
  local method=$1 url=$2 authorization=$3 body=${4-}
  local args=(--silent --show-error --fail --max-time 30 -X "$method" -H 'Accept: application/json')
  if [[ -n $body ]]; then
    curl "${args[@]}" -H @<(authorization_header "$authorization") -H 'Content-Type: application/json' --data-binary @- "$url" <<<"$body"
  else
    curl "${args[@]}" -H @<(authorization_header "$authorization") "$url"
  fi
}

authorization_header() { # $1: credentials or empty → the header line, or nothing
  local -
  set +x
  [[ -z $1 ]] || printf 'Authorization: %s\n' "$1"
}

# Retries a call until it succeeds or WAIT_TIMEOUT passes; the last error is shown on failure.
api_until() { # $1: what (for the error), rest: api arguments → the response body
  local -
  set +x
  local what=$1 deadline=$((SECONDS + WAIT_TIMEOUT)) errors response
  shift
  errors=$(mktemp)
  while :; do
    if response=$(api "$@" 2>"$errors"); then
      rm -f "$errors"
      printf '%s' "$response"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      printf '[bootstrap] last error: %s\n' "$(tail -n 1 "$errors")" >&2
      rm -f "$errors"
      die "$what did not succeed within ${WAIT_TIMEOUT}s"
    fi
    sleep "$API_RETRY_DELAY"
  done
}

netbird_pat() {
  local -
  set +x
  local pat
  pat=$(state_get .netbird.pat)
  [[ -n $pat ]] || die "no NetBird PAT in $STATE_FILE"
  printf 'Token %s' "$pat"
}

# A minting call's answer goes straight into a 0600 file on the data root before anything
# else happens, so an interruption after NetBird answered loses nothing: the next run finds
# the file and takes the value from it instead of minting again (NetBird answers /api/setup
# only once). The file goes once the value is in the state file.
mint_once() { # $1: record name, $2: jq filter for the value, rest: api arguments → MINTED
  local -
  set +x
  local record="$DATA/.minted-$1.json"
  if ! jq -e "$2 | strings" "$record" >/dev/null 2>&1; then
    if ! (umask 077 && api "${@:3}" >"$record"); then
      rm -f "$record"
      return 1
    fi
  fi
  MINTED=$(jq -r "$2 // empty" "$record")
  [[ -n $MINTED ]]
}

forget_minted() { rm -f "$DATA/.minted-$1.json"; }

authentik_issuer() { printf 'https://auth.%s/application/o/netbird/' "${CONF[BIFROST_DOMAIN]}"; }

# akadmin's password is set when AUTHENTIK_BOOTSTRAP_PASSWORD changed since the last run
# (a keyed fingerprint in the state file), so a rotation in SOPS reaches Authentik.
step_authentik_admin() {
  local -
  set +x
  local output result_line=$'(^|\n)PASSWORD:(set|unchanged)($|\n)'
  fingerprint_of AUTHENTIK_BOOTSTRAP_PASSWORD
  if [[ $(state_get .authentik.admin_password_fingerprint) == "$FINGERPRINT" ]]; then
    STEP_NOTE="unchanged"
    return 0
  fi
  output=$(docker exec -i authentik-server ak shell <<<"$ADMIN_PASSWORD_SNIPPET") ||
    die "could not set akadmin's password through ak shell in authentik-server"
  [[ $output =~ $result_line ]] || die "ak shell did not confirm akadmin's password"
  state_set .authentik.admin_password_fingerprint "$FINGERPRINT"
  STEP_NOTE="akadmin's password ${BASH_REMATCH[2]}"
}

# --- authentik, declarative part -------------------------------------------------------

# The blueprint (authentik/blueprints/netbird.yaml) creates NetBird's OAuth2 provider and
# application. `ak apply_blueprint` exits non-zero only for an invalid blueprint and ignores
# a failed apply (authentik/blueprints/management/commands/apply_blueprint.py), so the result
# is read back through the API with the minted token: client, strict redirect, and the
# client secret Pulumi generated.
step_authentik_blueprint() {
  local -
  set +x
  local providers expected_redirect
  docker exec authentik-server ak apply_blueprint "$NETBIRD_BLUEPRINT" >/dev/null
  expected_redirect="https://netbird.${CONF[BIFROST_DOMAIN]}/oauth2/callback"
  providers=$(api_until "reading NetBird's OAuth2 provider from Authentik's API" \
    GET "$AUTHENTIK_API/api/v3/providers/oauth2/?client_id=netbird" "Bearer ${CONF[AUTHENTIK_TOKEN]}")
  NB_SECRET=${CONF[NB_AUTHENTIK_CLIENT_SECRET]} REDIRECT=$expected_redirect jq -e '
    .results | length == 1 and (.[0] |
      .client_type == "confidential" and .client_secret == env.NB_SECRET and
      .redirect_uris == [{matching_mode: "strict", url: env.REDIRECT}])' <<<"$providers" >/dev/null ||
    die "Authentik's NetBird provider does not match the blueprint after applying it (client type, redirect URI or client secret)"
  api_until "reading the NetBird application from Authentik's API" \
    GET "$AUTHENTIK_API/api/v3/core/applications/netbird/" "Bearer ${CONF[AUTHENTIK_TOKEN]}" >/dev/null
  STEP_NOTE="provider and application verified"
}

# --- netbird, through its API ---------------------------------------------------------------

# First boot: the owner (NB_OWNER_EMAIL / NB_OWNER_PASSWORD) and a PAT from POST /api/setup
# (management/server/instance/setup_service.go; PAT only with NB_SETUP_PAT_ENABLED=true). It
# answers once: 412 once an owner exists, so a server on the old volume must find the PAT in
# the state file instead. GET /api/instance says whether setup is still required.
step_netbird_setup() {
  local -
  set +x
  local instance body recovered=""
  instance=$(api_until "NetBird's API (GET /api/instance)" GET "$NETBIRD_API/api/instance" "")
  if [[ -n $(state_get .netbird.pat) ]]; then
    forget_minted setup
    renew_netbird_pat
    return 0
  fi
  if jq -e '.personal_access_token | strings' "$DATA/.minted-setup.json" >/dev/null 2>&1; then recovered=1; fi
  if [[ -z $recovered ]]; then
    jq -e '.setup_required == true' <<<"$instance" >/dev/null ||
      die "NetBird already has an owner but $STATE_FILE holds no PAT for it: the bootstrap cannot act for NetBird." \
        "Create a personal access token for the owner in NetBird's dashboard and store it in $STATE_FILE" \
        "as .netbird.pat (with .netbird.user_id), or start NetBird over by deleting $DATA/netbird."
  fi
  body=$(EMAIL=${CONF[NB_OWNER_EMAIL]} PASSWORD=${CONF[NB_OWNER_PASSWORD]} DAYS=$PAT_DAYS jq -n \
    '{email: env.EMAIL, password: env.PASSWORD, name: "Bifrost owner", create_pat: true, pat_expire_in: (env.DAYS | tonumber)}')
  mint_once setup .personal_access_token POST "$NETBIRD_API/api/setup" "" "$body" ||
    die "NetBird's POST /api/setup gave no PAT: is NB_SETUP_PAT_ENABLED=true set for netbird-server?"
  state_set .netbird.user_id "$(jq -r '.user_id' "$DATA/.minted-setup.json")"
  state_set .netbird.pat_expires "$(($(date +%s) + PAT_DAYS * 86400))"
  state_set .netbird.pat "$MINTED"
  forget_minted setup
  STEP_NOTE="owner created, PAT stored${recovered:+ (recovered from an interrupted run)}"
}

# POST /api/users/{id}/tokens with the current PAT (management/server/http/handlers/users/pat_handler.go).
renew_netbird_pat() {
  local -
  set +x
  local expires user_id response body
  expires=$(state_get .netbird.pat_expires)
  if [[ -n $expires ]] && ((expires - $(date +%s) > PAT_RENEW_DAYS * 86400)); then
    STEP_NOTE="set up before, PAT valid"
    return 0
  fi
  user_id=$(state_get .netbird.user_id)
  body=$(DAYS=$PAT_DAYS jq -n '{name: "bifrost-bootstrap", expires_in: (env.DAYS | tonumber)}')
  response=$(api POST "$NETBIRD_API/api/users/$user_id/tokens" "$(netbird_pat)" "$body") || die "renewing NetBird's PAT failed"
  state_set .netbird.pat "$(jq -r '.plain_token' <<<"$response")"
  state_set .netbird.pat_expires "$(($(date +%s) + PAT_DAYS * 86400))"
  STEP_NOTE="set up before, PAT renewed"
}

# A proxy token and a reusable setup key for the edge's own services, minted through NetBird's
# API when SOPS has none (reverseproxy/proxytoken/handler.go; setup_keys/setupkeys_handler.go:
# expires_in 0 = never). A SOPS value always wins; a minted one is kept in the state file.
step_netbird_tokens() {
  local -
  set +x
  local notes=()
  if has_value NB_PROXY_TOKEN; then
    notes+=("proxy token from SOPS")
  elif [[ -n $(state_get .netbird.proxy_token) ]]; then
    notes+=("proxy token minted before")
  else
    mint_once proxy-token .plain_token POST "$NETBIRD_API/api/reverse-proxies/proxy-tokens" "$(netbird_pat)" \
      '{"name": "bifrost-proxy", "expires_in": 0}' || die "minting a proxy token through NetBird's API failed"
    state_set .netbird.proxy_token "$MINTED"
    notes+=("proxy token minted")
  fi
  forget_minted proxy-token
  if has_value NB_BIFROST_SETUP_KEY; then
    notes+=("setup key from SOPS")
  elif [[ -n $(state_get .netbird.setup_key) ]]; then
    notes+=("setup key minted before")
  else
    mint_once setup-key .key POST "$NETBIRD_API/api/setup-keys" "$(netbird_pat)" \
      '{"name": "bifrost", "type": "reusable", "expires_in": 0, "auto_groups": [], "usage_limit": 0, "ephemeral": false}' ||
      die "minting a setup key through NetBird's API failed"
    state_set .netbird.setup_key "$MINTED"
    notes+=("setup key minted")
  fi
  forget_minted setup-key
  STEP_NOTE=$(IFS=,; printf '%s' "${notes[*]}")
  STEP_NOTE=${STEP_NOTE//,/, }
}

# Authentik as an upstream identity provider of NetBird's embedded IdP, update-or-create by
# issuer and never deleted (user ids hang on the connector: management/server/
# identity_provider.go). NetBird fetches the issuer's discovery document over the public
# name, so this retries until auth.<domain> answers with a valid certificate. The secret is
# never read back (the API does not return it): a keyed fingerprint in the state file says
# whether NetBird has the current one.
step_netbird_idp() {
  local -
  set +x
  local issuer existing id body
  issuer=$(authentik_issuer)
  fingerprint_of NB_AUTHENTIK_CLIENT_SECRET
  existing=$(api_until "listing NetBird's identity providers" GET "$NETBIRD_API/api/identity-providers" "$(netbird_pat)")
  id=$(ISSUER=$issuer jq -r 'map(select(.issuer == env.ISSUER)) | first | .id // empty' <<<"$existing")
  if [[ -n $id && $(state_get .netbird.idp_secret_fingerprint) == "$FINGERPRINT" ]]; then
    STEP_NOTE="registered, unchanged"
    return 0
  fi
  body=$(ISSUER=$issuer SECRET=${CONF[NB_AUTHENTIK_CLIENT_SECRET]} jq -n \
    '{type: "authentik", name: "Authentik", issuer: env.ISSUER, client_id: "netbird", client_secret: env.SECRET}')
  if [[ -n $id ]]; then
    api_until "updating Authentik in NetBird's identity providers" PUT "$NETBIRD_API/api/identity-providers/$id" "$(netbird_pat)" "$body" >/dev/null
    STEP_NOTE="updated"
  else
    id=$(api_until "registering Authentik in NetBird's identity providers" POST "$NETBIRD_API/api/identity-providers" "$(netbird_pat)" "$body" | jq -r '.id')
    STEP_NOTE="registered"
  fi
  state_set .netbird.idp_id "$id"
  state_set .netbird.idp_secret_fingerprint "$FINGERPRINT"
}

# --- the steps that start services ---------------------------------------------------------

step_pull() {
  # Compose pulls every image in parallel.
  compose pull --quiet
}

step_traefik() { start_services traefik; }
step_authentik_postgres() { start_services authentik-postgres; }
step_authentik() { start_services authentik-server authentik-worker; }
step_netbird_dashboard() { start_services netbird-dashboard; }
step_netbird_proxy() { start_services netbird-proxy; }
step_netbird_agent() { start_services netbird-agent; }

step_netbird_server() {
  if [[ -e $NETBIRD_RESTART_PENDING ]] && [[ -n $(compose ps --all --quiet netbird-server) ]]; then
    compose restart netbird-server >/dev/null
    STEP_NOTE="restarted for the new config"
  fi
  start_services netbird-server
  rm -f "$NETBIRD_RESTART_PENDING"
}

# --- the step graph ------------------------------------------------------------------------

declare -A NEEDS=()  # step → the steps it needs, space-separated
GRAPH_ORDER=()       # steps in file order

load_graph() {
  local line step needs _starts
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
    read -r step needs _starts <<<"$line"
    [[ $(type -t "step_${step//-/_}") == function ]] || die "$GRAPH_FILE: step $step has no function step_${step//-/_}"
    [[ $needs == - ]] && needs=""
    NEEDS[$step]=${needs//,/ }
    GRAPH_ORDER+=("$step")
  done <"$GRAPH_FILE"
  for step in "${GRAPH_ORDER[@]}"; do
    for needs in ${NEEDS[$step]}; do
      [[ -v "NEEDS[$needs]" ]] || die "$GRAPH_FILE: step $step needs $needs, which is not a step"
    done
  done
}

# One step in a subshell of its own: a failure ends that subshell and is reported by its name.
run_step() { # $1: step
  CURRENT_STEP=$1
  trap on_exit EXIT
  step "$1" "step_${1//-/_}"
}

# Starts every step whose needs are done, waits for any to finish, and repeats. After a
# failure nothing new starts; the steps under way finish, then the run fails.
run_graph() {
  local step dep ready finished rc failed=""
  local -A finished_steps=() running=()
  local -A step_of=()
  while ((${#finished_steps[@]} < ${#GRAPH_ORDER[@]})); do
    if [[ -z $failed ]]; then
      for step in "${GRAPH_ORDER[@]}"; do
        [[ -v "finished_steps[$step]" || -v "running[$step]" ]] && continue
        ready=1
        for dep in ${NEEDS[$step]}; do [[ -v "finished_steps[$dep]" ]] || ready=0; done
        ((ready)) || continue
        run_step "$step" &
        running[$step]=$!
        step_of[$!]=$step
      done
    fi
    ((${#running[@]} > 0)) || break
    rc=0
    wait -n -p finished "${running[@]}" || rc=$?
    step=${step_of[$finished]}
    unset "running[$step]"
    if ((rc == 0)); then
      finished_steps[$step]=1
    else
      failed+="${failed:+ }$step"
    fi
  done
  [[ -z $failed ]] || die "step(s) failed: $failed"
  ((${#finished_steps[@]} == ${#GRAPH_ORDER[@]})) || die "$GRAPH_FILE: steps that can never start (a cycle?)"
}

main() {
  RUN_STARTED=$(now_micros)
  cd "$BIFROST_DIR"
  trap on_exit EXIT
  acquire_lock
  step preflight preflight
  run_graph
  log "bifrost is up ($(since "$RUN_STARTED"))"
}

main "$@"

#!/usr/bin/env bash
# Bifrost bootstrap: brings up the stack of docker-compose.yml and wires NetBird to Authentik,
# following the step graph of bootstrap.graph (independent steps run at the same time), each
# start gated on the health of its services, and converges to the same state from any earlier
# run, including one interrupted at any point. Pulumi runs it as `bash /etc/bifrost/bootstrap.sh`
# after writing .env and .secrets.env (both rendered by components/secrets/render.ts).
#
# Files: Pulumi owns /etc/bifrost and this script never writes there (but for its lock).
# What the bootstrap renders, mints and records lives under the data root (BIFROST_DATA, the
# kept volume): the rendered NetBird config, the keyed fingerprints, and bootstrap-state.json
# (mode 0600: NetBird's PAT and the tokens minted through it), so a new server on the old
# volume finds them and never runs NetBird's first-boot setup again.
#
# Secrets: values are read from the env files with the parser of lib/env.sh (never `source`d: the
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
readonly TOKEN_ATTEMPTS="${BIFROST_TOKEN_ATTEMPTS:-60}"
readonly TOKEN_RETRY_DELAY="${BIFROST_TOKEN_RETRY_DELAY:-1}"
readonly API_RETRY_DELAY="${BIFROST_API_RETRY_DELAY:-2}"
readonly LOG_TAIL_LINES=50
# Failure output kept under $DATA/bootstrap-logs (lib/state.sh keep_output): the newest files.
readonly KEPT_LOGS=20
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
# A minted proxy token lives as long as the PAT and is renewed in the same last 30 days.
readonly PROXY_TOKEN_DAYS=$PAT_DAYS

declare -A CONF=()  # every NAME="value" of .env and .secrets.env
DATA=""             # BIFROST_DATA, the data root
STATE_FILE=""       # $DATA/bootstrap-state.json
NETBIRD_CONFIG=""   # $DATA/netbird-config/config.yaml, mounted into netbird-server
# Compose does not notice a mounted file changing: this marker survives an interruption
# between rendering a changed config and restarting the service that reads it.
NETBIRD_RESTART_PENDING=""
MINTED=""
REVOKED=0 # set by revoke_others (steps/netbird.sh)
FINGERPRINT_KEY=""
CURRENT_STEP=""
STEP_STARTED=0
STEP_NOTE=""
HEALTH_NOTE="" # set by start_services when a service's health came back during the wait
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
  HEALTH_NOTE=""
  STEP_STARTED=$(now_micros)
  shift
  "$@"
  log "step ${CURRENT_STEP}: ok${STEP_NOTE:+, $STEP_NOTE}${HEALTH_NOTE:+, $HEALTH_NOTE} ($(since "$STEP_STARTED"))"
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

# The shared machinery and the steps, beside this file (shipped with it in the bundle). A step
# NAME of bootstrap.graph is the function step_NAME in steps/<service>.sh: host (volume,
# data-dirs, pull, traefik), authentik (authentik-*, postgres-password), netbird (netbird-*).
BOOTSTRAP_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly BOOTSTRAP_HOME
# shellcheck source=cloud/bifrost/lib/env.sh
source "$BOOTSTRAP_HOME/lib/env.sh"
# shellcheck source=cloud/bifrost/lib/state.sh
source "$BOOTSTRAP_HOME/lib/state.sh"
# shellcheck source=cloud/bifrost/lib/http.sh
source "$BOOTSTRAP_HOME/lib/http.sh"
# shellcheck source=cloud/bifrost/lib/compose.sh
source "$BOOTSTRAP_HOME/lib/compose.sh"
# shellcheck source=cloud/bifrost/lib/mesh.sh
source "$BOOTSTRAP_HOME/lib/mesh.sh"
# shellcheck source=cloud/bifrost/steps/host.sh
source "$BOOTSTRAP_HOME/steps/host.sh"
# shellcheck source=cloud/bifrost/steps/authentik.sh
source "$BOOTSTRAP_HOME/steps/authentik.sh"
# shellcheck source=cloud/bifrost/steps/netbird.sh
source "$BOOTSTRAP_HOME/steps/netbird.sh"

# --- the step graph ------------------------------------------------------------------------

declare -A NEEDS=()  # step → the steps it needs, space-separated
GRAPH_ORDER=()       # steps in file order

# Reads every line first and reports every problem of the table at once.
load_graph() {
  local line kind step other reason number=0 problems=()
  local -a edges=()
  while IFS= read -r line || [[ -n $line ]]; do
    number=$((number + 1))
    [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
    read -r kind step other reason <<<"$line"
    case $kind in
      step)
        if [[ $(type -t "step_${step//-/_}") != function ]]; then
          problems+=("line $number: step $step has no function step_${step//-/_}")
        elif [[ -v "NEEDS[$step]" ]]; then
          problems+=("line $number: step $step is declared twice")
        else
          NEEDS[$step]=""
          GRAPH_ORDER+=("$step")
        fi
        ;;
      need)
        if [[ -z $other ]]; then
          problems+=("line $number: need $step names no step it waits for")
        elif [[ -z $reason ]]; then
          problems+=("line $number: need $step $other gives no reason (what $step consumes from $other)")
        else
          edges+=("$number $step $other")
        fi
        ;;
      *) problems+=("line $number: starts with '$kind', not 'step' or 'need'") ;;
    esac
  done <"$GRAPH_FILE"
  for line in "${edges[@]}"; do
    read -r number step other <<<"$line"
    if [[ ! -v "NEEDS[$step]" ]]; then
      problems+=("line $number: need $step: $step is not a step")
    elif [[ ! -v "NEEDS[$other]" ]]; then
      problems+=("line $number: $step needs $other, which is not a step")
    else
      NEEDS[$step]+="${NEEDS[$step]:+ }$other"
    fi
  done
  ((${#problems[@]} == 0)) || die "$GRAPH_FILE is not a valid step graph:$(printf '\n  %s' "${problems[@]}")"
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
  local step dep ready finished rc pid failed=""
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
    finished=""
    wait -n -p finished "${running[@]}" || rc=$?
    if [[ -z $finished ]]; then
      # `wait -n` can return without naming a job when the one that ended was already reaped
      # while a command substitution ran; `wait PID` still has that job's status.
      for pid in "${running[@]}"; do
        kill -0 "$pid" 2>/dev/null && continue
        rc=0
        wait "$pid" || rc=$?
        finished=$pid
        break
      done
      [[ -n $finished ]] || continue
    fi
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

# Sourced (by a test that calls single functions), it only defines them.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi

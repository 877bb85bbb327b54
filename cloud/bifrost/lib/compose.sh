# shellcheck shell=bash disable=SC2034 # HEALTH_NOTE is read by the runner (bootstrap.sh step)
# Sourced by bootstrap.sh: running Compose for the stack, starting services gated on their
# health, and showing why one did not become healthy.

# Compose interpolates from the process environment before the env files (compose-go
# WithDotEnv; conformance: test/conformance/compose.test.ts), which is how a proxy token
# minted into the state file reaches its container when SOPS has none. Every call passes the
# same value, so Compose sees the same configuration every time.
compose() {
  local -
  set +x
  NB_PROXY_TOKEN=$(effective_token NB_PROXY_TOKEN .netbird.proxy_token) \
    docker compose --env-file .env --env-file .secrets.env "$@"
}


# compose with one more Compose file after the stack's own (COMPOSE_FILE, else docker-compose.yml):
# Compose reads COMPOSE_FILE only when no -f is given (docs: environment-variables/envvars).
compose_with() { # $1: the extra file, then compose's arguments
  local files file args=()
  IFS=: read -ra files <<<"${COMPOSE_FILE:-docker-compose.yml}"
  for file in "${files[@]}" "$1"; do args+=(-f "$file"); done
  shift
  compose "${args[@]}" "$@"
}

# UNHEALTHY_HINT, when a step sets it, says what to do about a service that stays unhealthy.
# UNHEALTHY_SINCE, when set, is how many seconds into the wait Compose gave up on a container
# its probe reported unhealthy: the error then says so instead of naming the whole deadline;
# STOPPED_SERVICE names a container that stopped running meanwhile.
report_unhealthy() { # services of the failed step
  local service status kept failing=() what
  for service in "$@"; do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$service" 2>/dev/null) || status=missing
    [[ $status == healthy ]] || failing+=("$service")
  done
  ((${#failing[@]} > 0)) || failing=("$@")
  for service in "${failing[@]}"; do
    kept=$({ compose logs --no-color --tail "$LOG_TAIL_LINES" "$service" 2>&1 || true; } | keep_output "$service")
    printf '[bootstrap] last %d log lines of %s: %s\n' "$LOG_TAIL_LINES" "$service" "$kept" >&2
  done
  what="did not become healthy within ${WAIT_TIMEOUT}s"
  if [[ -n ${STOPPED_SERVICE:-} ]]; then
    what="did not become healthy: $STOPPED_SERVICE stopped running (its program exited)"
  elif [[ -n ${UNHEALTHY_SINCE:-} ]]; then
    what="reported unhealthy by its probe"
    ((UNHEALTHY_SINCE > 0)) && what+=" after ${UNHEALTHY_SINCE}s" || what+=" at once"
    what+=" and was still not healthy when the step's ${WAIT_TIMEOUT}s ran out"
  fi
  die "${failing[*]} $what${UNHEALTHY_HINT:+: $UNHEALTHY_HINT}"
}

# Compose's `up --wait` gives up on a container as soon as its health is "unhealthy"
# (docker/compose pkg/compose/convergence.go isServiceHealthy: `case Unhealthy: return false,
# fmt.Errorf("container %s is unhealthy")`), even one it neither created nor restarted. A probe
# that timed out once on a busy host marks a running container unhealthy, and the next passing
# probe makes it healthy again (Docker's HEALTHCHECK: one success resets the failing streak).
# So the step waits, up to its own deadline, for every one of its services to be healthy
# again, and gives up at once only on a container that is not running.
start_services() { # services, started together and waited for by Compose
  local rc=0 started=$SECONDS
  compose up --detach --wait --wait-timeout "$WAIT_TIMEOUT" "$@" || rc=$?
  ((rc == 0)) && return 0
  local gave_up=$((SECONDS - started))
  if ((gave_up < WAIT_TIMEOUT)) && await_health "$((started + WAIT_TIMEOUT))" "$@"; then
    HEALTH_NOTE="healthy again after its probe reported unhealthy ${gave_up}s into the wait"
    return 0
  fi
  ((gave_up < WAIT_TIMEOUT)) && UNHEALTHY_SINCE=$gave_up
  report_unhealthy "$@"
}

await_health() { # $1: deadline (in SECONDS), then services; succeeds once all are healthy
  local deadline=$1 service state pending
  shift
  while :; do
    pending=0
    for service in "$@"; do
      state=$(docker inspect --format '{{.State.Status}} {{.State.Health.Status}}' "$service" 2>/dev/null) || state=missing
      [[ $state == "running healthy" ]] && continue
      if [[ $state != running\ * ]]; then
        STOPPED_SERVICE=$service
        return 1
      fi
      pending=1
    done
    ((pending == 0)) && return 0
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

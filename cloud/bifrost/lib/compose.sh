# shellcheck shell=bash
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
report_unhealthy() { # services of the failed step
  local service status kept failing=()
  for service in "$@"; do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$service" 2>/dev/null) || status=missing
    [[ $status == healthy ]] || failing+=("$service")
  done
  ((${#failing[@]} > 0)) || failing=("$@")
  for service in "${failing[@]}"; do
    kept=$({ compose logs --no-color --tail "$LOG_TAIL_LINES" "$service" 2>&1 || true; } | keep_output "$service")
    printf '[bootstrap] last %d log lines of %s: %s\n' "$LOG_TAIL_LINES" "$service" "$kept" >&2
  done
  die "${failing[*]} did not become healthy within ${WAIT_TIMEOUT}s${UNHEALTHY_HINT:+: $UNHEALTHY_HINT}"
}

start_services() { # services, started together and waited for by Compose
  local rc=0
  compose up --detach --wait --wait-timeout "$WAIT_TIMEOUT" "$@" || rc=$?
  ((rc == 0)) || report_unhealthy "$@"
}


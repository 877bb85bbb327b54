# shellcheck shell=bash disable=SC2034 # the results it sets (FINGERPRINT, STEP_NOTE, paths) are read by the runner and the other parts
# Sourced by bootstrap.sh: the steps of Authentik in bootstrap.graph (authentik-postgres,
# postgres-password, authentik, authentik-token, authentik-admin, authentik-blueprint).

# Snippets for `ak shell -c` (authentik/core/management/commands/shell.py: -c exec()s the code
# and exits; without it the shell is an interactive console, and a snippet on stdin races it).
# They hold no secret: each reads its value from the container's own environment.
#
# The one API token the bootstrap uses is Authentik's own `authentik-bootstrap-token`, which
# Authentik creates from AUTHENTIK_BOOTSTRAP_TOKEN at its first start (blueprints/system/
# bootstrap.yaml, `state: created`: never updated later). This sets the rotated key on that
# same token and removes every other token the bootstrap ever made (netbird-mgmt-token, minted
# by bootstraps before this one), so an old key stops authenticating.
readonly TOKEN_SNIPPET='import os
from authentik.core.models import Token, TokenIntents, User

key = os.environ["AUTHENTIK_BOOTSTRAP_TOKEN"]
user = User.objects.get(username="akadmin")
Token.objects.update_or_create(
    identifier="authentik-bootstrap-token",
    defaults={"user": user, "intent": TokenIntents.INTENT_API, "expiring": False, "key": key},
)
removed, _ = Token.objects.filter(identifier__in=["netbird-mgmt-token"]).delete()
print("TOKEN:set REMOVED:" + str(removed))'

# akadmin's password follows AUTHENTIK_BOOTSTRAP_PASSWORD, which Authentik itself reads only at
# its first start (blueprints/system/bootstrap.yaml).
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

# `ak shell -c SNIPPET` in authentik-server, retried while Django or akadmin is not there yet;
# the last error is shown when every attempt failed. Prints the snippet's output.
ak_shell() { # $1: what (for the error), $2: snippet, $3: regex its output must match
  local -
  set +x
  local attempt output errors
  errors=$(mktemp)
  for ((attempt = 1; attempt <= TOKEN_ATTEMPTS; attempt++)); do
    if output=$(docker exec authentik-server ak shell -c "$2" 2>"$errors") && [[ $output =~ $3 ]]; then
      rm -f "$errors"
      printf '%s' "$output"
      return 0
    fi
    if ((attempt < TOKEN_ATTEMPTS)); then sleep "$TOKEN_RETRY_DELAY"; fi
  done
  printf '[bootstrap] last error of ak shell: %s\n' "$(tail -n "$LOG_TAIL_LINES" "$errors" | keep_output ak-shell)" >&2
  rm -f "$errors"
  die "$1 through ak shell in authentik-server failed after $TOKEN_ATTEMPTS attempts"
}

# psql in authentik-postgres as the database's owner over its socket, the SQL on stdin; extra
# psql options first. Bounded by WAIT_TIMEOUT: libpq waits for a connection without limit
# (connect_timeout unset), and a `docker exec` that never returns would hold the bootstrap,
# and Pulumi's `up` with it. --foreground keeps it in the bootstrap's process group, so an
# interruption of the bootstrap still reaches it.
postgres_psql() {
  local rc=0
  timeout --foreground "$WAIT_TIMEOUT" docker exec -i authentik-postgres psql -v ON_ERROR_STOP=1 --quiet --no-psqlrc \
    "$@" --username=authentik --dbname=authentik || rc=$?
  ((rc != 124)) || die "psql in authentik-postgres did not return within ${WAIT_TIMEOUT}s (is the database shutting down? see: docker logs authentik-postgres)"
  return "$rc"
}

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
  postgres_psql <<<"$sql" >/dev/null
  write_atomically "$record" 0600 "$FINGERPRINT"
  STEP_NOTE="role password set"
}

# AUTHENTIK_TOKEN is the key of authentik-bootstrap-token. On first boot Authentik makes that
# token itself once its worker has applied the bootstrap blueprint, so the step only probes the
# API until the key answers: no `ak shell` on the critical path. The shell sets the key when a
# rotation left Authentik with the old one (a recorded fingerprint that differs), when another
# token the bootstrap made still exists, or when the key never starts to answer. A keyed
# fingerprint in the state file says which key Authentik holds.
step_authentik_token() {
  local -
  set +x
  local recorded attempt status="" output
  fingerprint_of AUTHENTIK_TOKEN
  recorded=$(state_get .authentik.token_fingerprint)
  if [[ -z $recorded || $recorded == "$FINGERPRINT" ]]; then
    for ((attempt = 1; attempt <= TOKEN_ATTEMPTS; attempt++)); do
      status=$(authentik_probe)
      [[ $status == 200 ]] && break
      if ((attempt < TOKEN_ATTEMPTS)); then sleep "$TOKEN_RETRY_DELAY"; fi
    done
  fi
  if [[ $status == 200 ]] && ! authentik_has_stale_tokens; then
    state_set .authentik.token_fingerprint "$FINGERPRINT"
    STEP_NOTE="key answers${recorded:+, unchanged}"
    return 0
  fi
  output=$(ak_shell "setting AUTHENTIK_TOKEN on authentik-bootstrap-token" "$TOKEN_SNIPPET" $'(^|\n)TOKEN:set REMOVED:([0-9]+)($|\n)')
  STEP_NOTE="key set on authentik-bootstrap-token"
  [[ $output =~ REMOVED:([1-9][0-9]*) ]] && STEP_NOTE+=", ${BASH_REMATCH[1]} other token(s) removed"
  api_until "Authentik's API with AUTHENTIK_TOKEN" GET "$AUTHENTIK_API/api/v3/core/users/me/" "Bearer ${CONF[AUTHENTIK_TOKEN]}" >/dev/null
  state_set .authentik.token_fingerprint "$FINGERPRINT"
}

# The HTTP status of GET /api/v3/core/users/me/ with AUTHENTIK_TOKEN: 200 when the key
# authenticates, 403 when no API token carries it (authentik/api/authentication.py raises
# AuthenticationFailed, which DRF answers with 403), 000 while nobody listens.
authentik_probe() {
  local -
  set +x
  curl --silent --output /dev/null --write-out '%{http_code}' --max-time 30 \
    -H @<(authorization_header "Bearer ${CONF[AUTHENTIK_TOKEN]}") "$AUTHENTIK_API/api/v3/core/users/me/" || true
}

# Whether a token the bootstrap made before this one (netbird-mgmt-token) still exists
# (authentik/core/api/tokens.py: filterset `identifier`, paginated `results`).
authentik_has_stale_tokens() {
  local -
  set +x
  local tokens
  tokens=$(api_until "listing Authentik's API tokens" GET "$AUTHENTIK_API/api/v3/core/tokens/?identifier=netbird-mgmt-token" "Bearer ${CONF[AUTHENTIK_TOKEN]}")
  jq -e '.results | length > 0' <<<"$tokens" >/dev/null
}

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
  output=$(ak_shell "setting akadmin's password" "$ADMIN_PASSWORD_SNIPPET" "$result_line")
  [[ $output =~ $result_line ]]
  state_set .authentik.admin_password_fingerprint "$FINGERPRINT"
  STEP_NOTE="akadmin's password ${BASH_REMATCH[2]}"
}

# The blueprint (authentik/blueprints/netbird.yaml) creates NetBird's OAuth2 provider and
# application. It needs Authentik's default flows and scope mappings, which the worker's
# blueprint discovery creates in no set order (authentik/blueprints/v1/tasks.py), so it
# declares them (metaapplyblueprint, required) and `ak apply_blueprint` exits 1 ("Blueprint
# invalid") until they are discovered. A valid blueprint whose apply then fails still exits 0
# (authentik/blueprints/management/commands/apply_blueprint.py ignores importer.apply()'s
# False), so success is what the API shows afterwards — client, strict redirect, flows, the
# client secret Pulumi generated, and the application — not the exit code. Either failure is
# retried within WAIT_TIMEOUT; the last output and what was wrong are shown.
step_authentik_blueprint() {
  local -
  set +x
  local problem attempts=0 deadline=$((SECONDS + WAIT_TIMEOUT)) output
  output=$(mktemp)
  while :; do
    if ! docker exec authentik-server ak apply_blueprint "$NETBIRD_BLUEPRINT" >"$output" 2>&1; then
      problem="Authentik refused the blueprint"
    elif problem=$(netbird_provider_problem); then
      break
    fi
    attempts=$((attempts + 1))
    if ((SECONDS >= deadline)); then
      printf '[bootstrap] last output of ak apply_blueprint: %s\n' "$(tail -n "$LOG_TAIL_LINES" "$output" | keep_output ak-apply-blueprint)" >&2
      rm -f "$output"
      die "Authentik did not apply $NETBIRD_BLUEPRINT within ${WAIT_TIMEOUT}s: $problem"
    fi
    sleep "$API_RETRY_DELAY"
  done
  rm -f "$output"
  STEP_NOTE="provider and application verified"
  ((attempts == 0)) || STEP_NOTE+=", applied after $attempts attempt(s) Authentik refused or did not apply (its defaults not yet discovered, or an apply that failed)"
}

# What is wrong with NetBird's provider and application as Authentik's API shows them; prints
# nothing and succeeds when they match the blueprint.
netbird_provider_problem() {
  local -
  set +x
  local providers expected_redirect
  expected_redirect="https://netbird.${CONF[BIFROST_DOMAIN]}/oauth2/callback"
  # Plain calls: a failure here is one more reason to retry in the step's own loop.
  if ! providers=$(api GET "$AUTHENTIK_API/api/v3/providers/oauth2/?client_id=netbird" "Bearer ${CONF[AUTHENTIK_TOKEN]}" 2>/dev/null); then
    printf "Authentik's API did not answer for NetBird's OAuth2 provider"
    return 1
  fi
  # Redirect URIs are compared by mode and URL: Authentik 2026.5 adds redirect_uri_type to each.
  if ! NB_SECRET=${CONF[NB_AUTHENTIK_CLIENT_SECRET]} REDIRECT=$expected_redirect jq -e '
    .results | length == 1 and (.[0] |
      .client_type == "confidential" and .client_secret == env.NB_SECRET and
      [.redirect_uris[] | {matching_mode, url}] == [{matching_mode: "strict", url: env.REDIRECT}] and
      .authorization_flow != null and .invalidation_flow != null)' <<<"$providers" >/dev/null; then
    printf "ak apply_blueprint exited 0, but Authentik's NetBird provider does not match the blueprint (client type, redirect URI, flows or client secret)"
    return 1
  fi
  # Exactly the grants the blueprint lists: none would refuse every login (a provider made by a
  # blueprint starts with none), more would allow flows NetBird never uses (the 2026.5
  # migration gave a provider that existed before all seven).
  if ! jq -e '.results[0].grant_types == ["authorization_code"]' <<<"$providers" >/dev/null; then
    printf "Authentik's NetBird provider allows the grants %s instead of exactly authorization_code" "$(jq -c '.results[0].grant_types // []' <<<"$providers")"
    return 1
  fi
  if ! api GET "$AUTHENTIK_API/api/v3/core/applications/netbird/" "Bearer ${CONF[AUTHENTIK_TOKEN]}" >/dev/null 2>&1; then
    printf "ak apply_blueprint exited 0, but Authentik has no NetBird application"
    return 1
  fi
}

step_authentik_postgres() { start_services authentik-postgres; }
step_authentik() {
  step_through_release_lines
  start_services authentik-server authentik-worker
}

# Authentik refuses to skip a release line (authentik/release-lines says how and why). When
# the line that last ran the database is older than the pinned one, the server of every line
# in between runs on it first, one after the other, each until healthy: Authentik migrates
# before its health check passes (lifecycle/gunicorn.conf.py run_migrations, 2025.10.4 and
# 2026.2.2; cmd/server/healthcheck.go asks the server, which answers once Django does). The
# worker is stopped meanwhile: the old one would run against a database it no longer knows.
# A line cut off midway is run again by the next bootstrap (the state names it).
step_through_release_lines() {
  local version db_line pinned pinned_line pending line image known=() images=() i from=-1 passed=()
  version=$(authentik_db_version)
  db_line=$(release_line "$version")
  [[ -n $db_line ]] || return 0 # a new database: the pinned Authentik makes it
  # `config --images SERVICE` would list its dependencies' images too (Compose 2.26): the
  # service's own image is read from its resolved configuration.
  pinned=$(compose config --format json authentik-server | jq -r '.services["authentik-server"].image')
  pinned_line=$(release_line "$pinned")
  [[ -n $pinned_line ]] || die "docker-compose.yml's authentik-server image names no Authentik version (YYYY.M.P): $pinned"
  [[ $db_line != "$pinned_line" ]] || return 0
  while read -r line image; do
    [[ -z $line || $line == \#* ]] && continue
    known+=("$line")
    images+=("$image")
  done <authentik/release-lines
  for i in "${!known[@]}"; do [[ ${known[i]} != "$db_line" ]] || from=$i; done
  ((from >= 0)) || die "Authentik's database was last run by release line $db_line, which is neither the pinned $pinned_line nor a line this bootstrap can step from (authentik/release-lines): a database from a newer Authentik cannot go back"
  pending=$(state_get .authentik.release_line_pending)
  [[ $pending == "$db_line" ]] || from=$((from + 1))
  ((from < ${#known[@]})) || return 0 # the line before the pinned one: Authentik migrates from it
  compose stop authentik-worker >/dev/null 2>&1
  for ((i = from; i < ${#known[@]}; i++)); do
    run_release_line "${known[i]}" "${images[i]}"
    passed+=("${known[i]}")
  done
  STEP_NOTE="database stepped from $db_line through ${passed[*]} to $pinned_line"
}

release_line() { # $1: an Authentik version or image reference → its release line (YYYY.M), or nothing
  [[ $1 =~ ([0-9]{4}\.[0-9]+)\.[0-9]+ ]] && printf '%s' "${BASH_REMATCH[1]}"
  return 0
}

# The version that last ran the database, as Authentik itself reads it before it migrates
# (lifecycle/migrate.py ensure_allowed_version; the table comes from lifecycle/
# system_migrations/version_history_create.py): nothing on a database Authentik never ran.
authentik_db_version() {
  postgres_psql --tuples-only --no-align <<'SQL'
SELECT to_regclass('authentik_version_history') IS NOT NULL AS has_history \gset
\if :has_history
SELECT version FROM authentik_version_history ORDER BY timestamp DESC LIMIT 1;
\endif
SQL
}

run_release_line() { # $1: release line, $2: its image
  local override version rc=0
  printf '[bootstrap] authentik: release line %s runs on the database first (%s)\n' "$1" "$2"
  state_set .authentik.release_line_pending "$1"
  docker image inspect "$2" >/dev/null 2>&1 || docker pull --quiet "$2" >/dev/null
  override=$(mktemp)
  printf 'services:\n  authentik-server:\n    image: %s\n' "$2" >"$override"
  compose_with "$override" up --detach --wait --wait-timeout "$WAIT_TIMEOUT" authentik-server || rc=$?
  rm -f "$override"
  ((rc == 0)) || UNHEALTHY_HINT="Authentik $2 did not finish migrating the database" report_unhealthy authentik-server
  version=$(authentik_db_version)
  [[ $(release_line "$version") == "$1" ]] || die "Authentik $2 became healthy, yet the database does not record release line $1 as the last to run it"
  state_delete .authentik.release_line_pending
}

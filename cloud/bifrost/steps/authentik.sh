# shellcheck shell=bash disable=SC2034 # the results it sets (FINGERPRINT, STEP_NOTE, paths) are read by the runner and the other parts
# Sourced by bootstrap.sh: the steps of Authentik in bootstrap.graph (authentik-postgres,
# postgres-password, authentik, authentik-token, authentik-admin, authentik-blueprint).

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

step_authentik_postgres() { start_services authentik-postgres; }
step_authentik() { start_services authentik-server authentik-worker; }

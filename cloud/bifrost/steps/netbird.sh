# shellcheck shell=bash
# Sourced by bootstrap.sh: the steps of NetBird in bootstrap.graph (netbird-store-key,
# netbird-config, netbird-server, netbird-dashboard, netbird-setup, netbird-account,
# netbird-tokens, netbird-idp, netbird-proxy, netbird-groups, netbird-agent, netbird-policies).

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

netbird_pat() {
  local -
  set +x
  local pat
  pat=$(state_get .netbird.pat)
  [[ -n $pat ]] || die "no NetBird PAT in $STATE_FILE"
  printf 'Token %s' "$pat"
}

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
  await_minted setup
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
    revoke_replaced_pats
    return 0
  fi
  # NetBird refuses an expired PAT like any unknown token (middleware/auth_middleware.go), and
  # only the owner's login can make a new one: say so rather than fail on the call.
  if [[ -n $expires ]] && ((expires <= $(date +%s))); then
    die "NetBird's PAT in $STATE_FILE expired (the bootstrap renews it only when it runs in its last ${PAT_RENEW_DAYS} days)." \
      "Log in to NetBird's dashboard as the owner, create a personal access token, store it in $STATE_FILE" \
      "as .netbird.pat with .netbird.pat_expires (epoch seconds), and run 'just core hetzner up' again."
  fi
  user_id=$(state_get .netbird.user_id)
  body=$(DAYS=$PAT_DAYS jq -n '{name: "bifrost-bootstrap", expires_in: (env.DAYS | tonumber)}')
  response=$(api POST "$NETBIRD_API/api/users/$user_id/tokens" "$(netbird_pat)" "$body") || die "renewing NetBird's PAT failed"
  state_set .netbird.pat "$(jq -r '.plain_token' <<<"$response")"
  state_set .netbird.pat_expires "$(($(date +%s) + PAT_DAYS * 86400))"
  state_set .netbird.pat_id "$(jq -r '.personal_access_token.id' <<<"$response")"
  STEP_NOTE="set up before, PAT renewed"
  revoke_replaced_pats
}

# A replaced PAT would stay valid until its own expiry, up to a year. Once the id of the PAT in
# use is known (recorded at each renewal), every other PAT the bootstrap made for the owner is
# deleted: /api/setup's "setup-token" (instance/setup_service.go setupPATTokenName) and earlier
# renewals, "bifrost-bootstrap" (pat_handler.go getAllTokens, deleteToken). PATs the owner made
# under other names stay. Run on every pass, so an interrupted renewal still ends with one PAT.
revoke_replaced_pats() {
  local -
  set +x
  local keep
  keep=$(state_get .netbird.pat_id)
  [[ -n $keep ]] || return 0
  revoke_others PATs "$NETBIRD_API/api/users/$(state_get .netbird.user_id)/tokens" \
    '.name == "setup-token" or .name == "bifrost-bootstrap"' "$keep"
  ((REVOKED == 0)) || STEP_NOTE+=", ${REVOKED} replaced PAT(s) revoked"
}

# Deletes (revokes) each item of a NetBird list that the jq condition picks, but the one in
# use; sets REVOKED to how many. A listed object's DELETE is its list's URL and its id.
revoke_others() { # $1: what they are (for errors), $2: the list's URL, $3: jq condition on an item, $4: the id in use
  local items id
  REVOKED=0
  items=$(api GET "$2" "$(netbird_pat)") || die "listing NetBird's $1 failed"
  for id in $(KEEP=$4 jq -r ".[] | select(($3) and .id != env.KEEP) | .id" <<<"$items"); do
    api DELETE "$2/$id" "$(netbird_pat)" >/dev/null || die "revoking one of NetBird's replaced $1 failed"
    REVOKED=$((REVOKED + 1))
  done
}

# A proxy token for netbird-proxy, minted through NetBird's API when SOPS has none
# (internals/modules/reverseproxy/proxytoken/handler.go, v0.77.1). A SOPS value always wins;
# a minted one is kept in the state file. It expires after PROXY_TOKEN_DAYS (expires_in;
# management refuses an expired one: types/proxy_access_token.go IsValid), and a run in its
# last PAT_RENEW_DAYS mints the next; one minted without an expiry (bootstraps before this)
# is replaced at once. netbird-proxy then gets the new one (its environment changed), and
# step_netbird_proxy revokes the replaced ones once it is healthy with it.
step_netbird_tokens() {
  local -
  set +x
  local expires
  if has_value NB_PROXY_TOKEN; then
    STEP_NOTE="proxy token from SOPS"
    return 0
  fi
  expires=$(state_get .netbird.proxy_token_expires)
  if [[ -n $(state_get .netbird.proxy_token) && -n $expires ]] && ((expires - $(date +%s) > PAT_RENEW_DAYS * 86400)); then
    STEP_NOTE="proxy token minted before, valid"
    return 0
  fi
  [[ -n $(state_get .netbird.proxy_token) ]] && STEP_NOTE="proxy token renewed" || STEP_NOTE="proxy token minted"
  mint_once proxy-token .plain_token POST "$NETBIRD_API/api/reverse-proxies/proxy-tokens" "$(netbird_pat)" \
    "$(DAYS=$PROXY_TOKEN_DAYS jq -nc '{name: "bifrost-proxy", expires_in: ((env.DAYS | tonumber) * 86400)}')" ||
    die "minting a proxy token through NetBird's API failed"
  state_set .netbird.proxy_token "$MINTED"
  state_set .netbird.proxy_token_id "$(minted_field proxy-token .id)"
  state_set .netbird.proxy_token_expires "$(($(date +%s) + PROXY_TOKEN_DAYS * 86400))"
  forget_minted proxy-token
  STEP_NOTE+=", valid ${PROXY_TOKEN_DAYS} days"
}

# A replaced proxy token would stay valid until its own expiry, or for ever (expires_in 0):
# once netbird-proxy runs with the current one, every other unrevoked token the bootstrap minted
# ("bifrost-proxy") is revoked (handler.go listTokens, revokeToken). Tokens the operator made
# under other names stay. Run on every pass, so an interrupted renewal still ends with one.
revoke_replaced_proxy_tokens() {
  local -
  set +x
  local keep
  keep=$(state_get .netbird.proxy_token_id)
  [[ -n $keep ]] && ! has_value NB_PROXY_TOKEN || return 0
  revoke_others "proxy tokens" "$NETBIRD_API/api/reverse-proxies/proxy-tokens" '.name == "bifrost-proxy" and (.revoked | not)' "$keep"
  ((REVOKED == 0)) || STEP_NOTE+="${STEP_NOTE:+, }${REVOKED} replaced proxy token(s) revoked"
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

step_netbird_dashboard() { start_services netbird-dashboard; }
step_netbird_proxy() {
  start_services netbird-proxy
  revoke_replaced_proxy_tokens
}

step_netbird_server() {
  if [[ -e $NETBIRD_RESTART_PENDING ]] && [[ -n $(compose ps --all --quiet netbird-server) ]]; then
    compose restart netbird-server >/dev/null
    STEP_NOTE="restarted for the new config"
  fi
  start_services netbird-server
  rm -f "$NETBIRD_RESTART_PENDING"
}

# NetBird v0.77.1's POST /api/setup gives the owner an account with an empty domain
# (instance/setup_service.go:114 GetAccountIDByUserID → user.go:990 GetOrCreateAccountByUser,
# with no domain), and every later SSO login takes the existing account's domain
# (account.go:1573 updateUserAuthWithSingleMode); an empty one is no valid domain
# (account.go:1803), so each person would get an account of their own, as its owner, outside
# the edge's network and its user approval. Upstream's fix (PR #6416) is in no release yet:
# until it is, the owner's account gets, once, in NetBird's own store, exactly what a first SSO
# login would have given it (account.go:1333 addNewPrivateAccount: the single account mode's
# domain, private, primary) — after that, people join it (account.go:1364
# addNewUserToDomainAccount), blocked until approved when the account requires approval.
readonly NETBIRD_ACCOUNT_DOMAIN="netbird.selfhosted" # server.go ResolveDomains: DefaultSelfHostedDomain

step_netbird_account() {
  local id others notes=() ACCOUNT APPROVAL_NOTE
  read_owner_account
  id=$(jq -r '.id' <<<"$ACCOUNT")
  # rs/xid: 20 characters of base32hex; checked before it goes into SQL.
  [[ $id =~ ^[0-9a-v]{20}$ ]] || die "NetBird's GET /api/accounts gave an account id the bootstrap does not recognise"
  if jq -e '.domain == ""' <<<"$ACCOUNT" >/dev/null; then
    join_people_to_owner_account "$id"
    read_owner_account
    jq -e --arg domain "$NETBIRD_ACCOUNT_DOMAIN" '.domain == $domain and .domain_category == "private"' <<<"$ACCOUNT" >/dev/null ||
      die "NetBird's account still shows no domain after the store was changed: SSO logins would make accounts of their own"
    notes+=("people who log in join the owner's account")
  fi
  others=$(netbird_store "SELECT count(*) FROM accounts WHERE id != '$id';")
  if ((others > 0)); then
    # account.go:242: NetBird turns single account mode off at start while it has more than one account.
    notes+=("warning: $others other account(s) from earlier logins keep NetBird's single account mode off; see the README, 'One NetBird account'")
  fi
  set_user_approval "$id" "$ACCOUNT"
  notes+=("$APPROVAL_NOTE")
  STEP_NOTE=$(printf '%s, ' "${notes[@]}")
  STEP_NOTE=${STEP_NOTE%, }
}

read_owner_account() { # → ACCOUNT: what GET /api/accounts shows the owner (its only element)
  ACCOUNT=$(api GET "$NETBIRD_API/api/accounts" "$(netbird_pat)" | jq -c '.[0]') || die "reading the owner's account from NetBird's API failed"
}

join_people_to_owner_account() { # $1: the owner's account id
  command -v sqlite3 >/dev/null ||
    die "sqlite3 is missing on this host (cloud-init installs it on a new server): apt-get install sqlite3, then run the bootstrap again"
  netbird_store "UPDATE accounts SET domain = '$NETBIRD_ACCOUNT_DOMAIN', domain_category = 'private', is_domain_primary_account = 1 WHERE id = '$1' AND domain = '';" >/dev/null
}

netbird_store() { # $1: SQL → its output; NetBird's own busy timeout (store/sql_store.go NewSqliteStore: 30 s)
  sqlite3 -bail -cmd '.timeout 30000' "$DATA/netbird/store.db" "$1"
}

# core:netbirdUserApproval as the account's settings.extra.user_approval_required. PUT
# /api/accounts/{id} rebuilds every setting from its body (accounts_handler.go
# updateAccountRequestSettings), so the body is the settings as read, with that one field changed.
set_user_approval() { # $1: account id, $2: the account as read → APPROVAL_NOTE
  local want=${CONF[NB_USER_APPROVAL_REQUIRED]:-true} body
  [[ $want == true || $want == false ]] || die "NB_USER_APPROVAL_REQUIRED in .env must be true or false"
  if jq -e --argjson want "$want" '.settings.extra.user_approval_required == $want' <<<"$2" >/dev/null; then
    APPROVAL_NOTE="user approval $([[ $want == true ]] && echo on || echo off)"
    return 0
  fi
  body=$(jq -c --argjson want "$want" '{settings: (.settings | .extra = ((.extra // {}) + {user_approval_required: $want}))}' <<<"$2")
  api PUT "$NETBIRD_API/api/accounts/$1" "$(netbird_pat)" "$body" >/dev/null || die "setting NetBird's user approval failed"
  APPROVAL_NOTE="user approval turned $([[ $want == true ]] && echo on || echo off)"
}

# --- the edge's place in the mesh (lib/mesh.sh) ---------------------------------------------

step_netbird_groups() {
  local groups name made=()
  groups=$(netbird_groups)
  for name in "$EDGE_GROUP" "$UPSTREAMS_GROUP" "$MESH_GROUP"; do
    [[ -z $(group_id "$name" "$groups") ]] || continue
    # groups_handler.go createGroup: an API group's name is unique (group.go validateNewGroup).
    api POST "$NETBIRD_API/api/groups" "$(netbird_pat)" "$(jq -nc --arg name "$name" '{name: $name, peers: []}')" >/dev/null ||
      die "creating the NetBird group $name failed"
    made+=("$name")
  done
  if ((${#made[@]} > 0)); then STEP_NOTE="made ${made[*]}"; else STEP_NOTE="unchanged"; fi
}

# The agent enrols once, with a key made for that one enrolment: one-off, expiring in a day, its
# peer put into bifrost-edge (setupkeys_handler.go createSetupKey; server/peer.go AddPeer applies
# the key's auto-groups). The key reaches the container through a file it reads once at start
# (docker-compose.yml NB_SETUP_KEY_FILE); once the agent is healthy (connected) the file is
# emptied and the key deleted from NetBird. Enrolled (the state file says so, or the agent is
# healthy), it logs in with its WireGuard key, kept on the data root (netbird-agent/): a rerun
# or a new server on the kept volume makes no key.
readonly AGENT_KEY_DAYS=1 # the API's shortest expiry (openapi.yml CreateSetupKeyRequest.expires_in: minimum 86400)

step_netbird_agent() {
  local -
  set +x
  local key_file="$DATA/netbird-agent/setup-key" health groups id
  mkdir -p "${key_file%/*}"
  [[ -f $key_file ]] || write_atomically "$key_file" 0600 ""
  health=$(docker inspect --format '{{.State.Health.Status}}' netbird-agent 2>/dev/null) || health=missing
  # .netbird.setup_key: an edge enrolled before the edge had a group (delete_reusable_setup_key).
  if [[ $health == healthy || -n $(state_get .netbird.edge_enrolled) || -n $(state_get .netbird.setup_key) ]]; then
    UNHEALTHY_HINT="netbird-agent was enrolled before and logs in with its WireGuard key in $DATA/netbird-agent;"
    UNHEALTHY_HINT+=" if that key was lost, delete .netbird.edge_enrolled from $STATE_FILE and run 'just core hetzner up' again to enrol it anew"
    start_services netbird-agent
    STEP_NOTE="enrolled before"
  elif has_value NB_BIFROST_SETUP_KEY; then
    write_atomically "$key_file" 0600 "${CONF[NB_BIFROST_SETUP_KEY]}"
    start_services netbird-agent
    STEP_NOTE="enrolled with the setup key from SOPS"
  else
    groups=$(netbird_groups)
    id=$(group_id "$EDGE_GROUP" "$groups")
    [[ -n $id ]] || die "NetBird has no group $EDGE_GROUP (made by the netbird-groups step)"
    mint_once "$AGENT_KEY_RECORD" .key POST "$NETBIRD_API/api/setup-keys" "$(netbird_pat)" \
      "$(GROUP=$id DAYS=$AGENT_KEY_DAYS jq -nc '{name: "bifrost-edge-enrolment", type: "one-off", usage_limit: 1,
        expires_in: ((env.DAYS | tonumber) * 86400), auto_groups: [env.GROUP], ephemeral: false}')" ||
      die "making a setup key through NetBird's API failed"
    write_atomically "$key_file" 0600 "$MINTED"
    start_services netbird-agent
    STEP_NOTE="enrolled with a one-off setup key, deleted after use"
  fi
  [[ -n $(state_get .netbird.edge_enrolled) ]] || state_set .netbird.edge_enrolled "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  finish_enrolment "$key_file"
  delete_reusable_setup_key
  pin_edge_group
}

# Before the edge joins (netbird-agent needs this step): a rule names groups by id and keeps
# those that exist, with or without peers (management/server/policy.go validatePolicy,
# getValidGroupIDs, v0.77.1), so the edge's policy and the replacement of Default are in place
# when its peer appears. Re-asserted on every run; Default is replaced once per account.
step_netbird_policies() {
  local peers groups edge_peers upstreams notes=() NOTE
  peers=$(api GET "$NETBIRD_API/api/peers" "$(netbird_pat)") || die "listing NetBird's peers failed"
  groups=$(netbird_groups)
  edge_peers=$(edge_peer_ids "$peers" "$groups")
  upstreams=$(resolve_upstreams "$peers")
  jq -e '.ambiguous == []' <<<"$upstreams" >/dev/null ||
    die "more than one NetBird peer answers to the upstream of $(jq -r '.ambiguous | join(", ")' <<<"$upstreams") (core:publicServices): give it by the peer's NetBird address or its full DNS name"
  set_group_peers "$UPSTREAMS_GROUP" "$(jq -c '[.resolved[].peer] | unique' <<<"$upstreams")" "$groups"
  edge_policy "$groups" "$(jq -c '[.resolved[].port] | unique' <<<"$upstreams")"
  notes+=("$NOTE")
  jq -e '.unresolved == []' <<<"$upstreams" >/dev/null ||
    notes+=("warning: no NetBird peer yet for $(jq -r '.unresolved | join(", ")' <<<"$upstreams") (run up again once it has joined)")
  replace_default_policy "$edge_peers" "$peers" "$groups"
  notes+=("$NOTE")
  STEP_NOTE=$(printf '%s, ' "${notes[@]}")
  STEP_NOTE=${STEP_NOTE%, }
}

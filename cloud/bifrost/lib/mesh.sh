# shellcheck shell=bash
# Sourced by bootstrap.sh: the edge's groups, enrolment key and policies in NetBird, used by the
# steps netbird-groups, netbird-agent and netbird-policies (steps/netbird.sh).
#
# NetBird's Default policy lets every peer reach every peer (types/account.go AddAllGroup), and
# the combined server cannot be told not to make it (combined/cmd/config.go: no
# disableDefaultPolicy under `server:`). The edge is the one peer the internet can reach, so it
# gets a group of its own, may open connections only to the peers behind
# BIFROST_PUBLIC_SERVICES on their ports, and no policy lets a peer open one to it (NetBird's
# peer firewall lets the answers of a connection the edge opened back in; nothing else).
# Default is replaced once by the same all-to-all policy over a group that leaves the edge out.
readonly EDGE_GROUP=bifrost-edge
readonly UPSTREAMS_GROUP=bifrost-upstreams
readonly MESH_GROUP=homelab
readonly EDGE_POLICY="bifrost-edge to its upstreams"

netbird_groups() { api GET "$NETBIRD_API/api/groups" "$(netbird_pat)" || die "listing NetBird's groups failed"; }
group_id() { jq -r --arg name "$1" 'map(select(.name == $name)) | first | .id // empty' <<<"$2"; } # $1: name, $2: the groups

# NetBird's answer when the bootstrap makes the agent's enrolment key (lib/state.sh mint_once).
readonly AGENT_KEY_RECORD=agent-setup-key

# Also after an interrupted run: whatever key the last enrolment used leaves the file, and a
# key the bootstrap made leaves NetBird.
finish_enrolment() { # $1: the key file
  local -
  set +x
  local record="$DATA/.minted-$AGENT_KEY_RECORD.json" id
  [[ ! -s $1 ]] || write_atomically "$1" 0600 ""
  await_minted "$AGENT_KEY_RECORD"
  if [[ -f $record ]]; then
    id=$(jq -r '.id // empty' "$record")
    if [[ -n $id ]] && api GET "$NETBIRD_API/api/setup-keys" "$(netbird_pat)" | jq -e --arg id "$id" 'any(.[]; .id == $id)' >/dev/null; then
      api DELETE "$NETBIRD_API/api/setup-keys/$id" "$(netbird_pat)" >/dev/null || die "deleting the used setup key from NetBird failed"
    fi
    forget_minted "$AGENT_KEY_RECORD"
  fi
}

# Before the edge had a group, the bootstrap minted a reusable, never-expiring key named
# "bifrost" and kept it in the state file: it is deleted from NetBird and forgotten.
delete_reusable_setup_key() {
  local id
  [[ -n $(state_get .netbird.setup_key) ]] || return 0
  for id in $(api GET "$NETBIRD_API/api/setup-keys" "$(netbird_pat)" | jq -r '.[] | select(.name == "bifrost" and .type == "reusable") | .id'); do
    api DELETE "$NETBIRD_API/api/setup-keys/$id" "$(netbird_pat)" >/dev/null || die "deleting the old reusable setup key from NetBird failed"
  done
  state_delete .netbird.setup_key
  STEP_NOTE+=", the old reusable setup key deleted"
}

# Each public service's upstream (name=URL in BIFROST_PUBLIC_SERVICES) as the NetBird peer it
# names, and its port (the URL's, else the scheme's). A host names a peer only exactly: its
# NetBird address, or one of its full DNS names — the API's dns_label is already the full name,
# label and account domain (netbird v0.77.1 management/server/http/handlers/peers/
# peers_handler.go fqdn()), extra_dns_labels likewise. A prefix would let a peer named `100`
# stand for every upstream given as a 100.x address. A host more than one peer answers to is
# ambiguous and resolves to none.
# → {resolved: [{peer, port}], unresolved: [service names], ambiguous: [service names]}
resolve_upstreams() { # $1: the peers
  SERVICES=${CONF[BIFROST_PUBLIC_SERVICES]:-} jq -c '
    [env.SERVICES | splits(" +") | select(. != "")
      | capture("^(?<name>[^=]+)=(?<scheme>https?)://(?<host>[^:/]+)(:(?<port>[0-9]+))?")
      | .port = (.port // (if .scheme == "https" then "443" else "80" end))] as $services
    | . as $peers
    | [$services[] | . as $s | {name, port, peers: [$peers[] | select(.ip == $s.host or .dns_label == $s.host
        or ((.extra_dns_labels // []) | index($s.host) != null)) | .id]}]
    | {resolved: map(select(.peers | length == 1) | {peer: .peers[0], port}),
       unresolved: map(select(.peers == []) | .name), ambiguous: map(select(.peers | length > 1) | .name)}' <<<"$1"
}

# PUT /api/groups/{id} replaces the group's peers with the body's (groups_handler.go updateGroup).
set_group_peers() { # $1: group name, $2: peer ids (JSON), $3: the groups
  local id
  id=$(group_id "$1" "$3")
  jq -e --arg name "$1" --argjson want "$2" 'map(select(.name == $name)) | first | ([.peers[].id] | sort) == ($want | sort)' <<<"$3" >/dev/null && return 0
  api PUT "$NETBIRD_API/api/groups/$id" "$(netbird_pat)" "$(jq -nc --arg name "$1" --argjson peers "$2" '{name: $name, peers: $peers}')" >/dev/null ||
    die "setting the peers of the NetBird group $1 failed"
}

# One policy, one rule (policy.go validatePolicy: a policy's rules share its id), TCP from the
# edge to the upstreams' ports only; not bidirectional, so no upstream can open a connection to
# the edge. Without a resolved upstream there is no policy: a TCP rule with no ports allows them all.
edge_policy() { # $1: the groups, $2: ports (JSON) → NOTE
  local policies existing body
  policies=$(api GET "$NETBIRD_API/api/policies" "$(netbird_pat)") || die "listing NetBird's policies failed"
  existing=$(jq -r --arg name "$EDGE_POLICY" 'map(select(.name == $name)) | first | .id // empty' <<<"$policies")
  if [[ $2 == "[]" ]]; then
    [[ -z $existing ]] || api DELETE "$NETBIRD_API/api/policies/$existing" "$(netbird_pat)" >/dev/null || die "deleting the edge's policy failed"
    NOTE="the edge reaches no peer (no upstream in NetBird)"
    return 0
  fi
  body=$(jq -nc --arg name "$EDGE_POLICY" --arg from "$(group_id "$EDGE_GROUP" "$1")" --arg to "$(group_id "$UPSTREAMS_GROUP" "$1")" --argjson ports "$2" \
    '{name: $name, description: "Managed by the Bifrost bootstrap", enabled: true, rules: [{name: $name, enabled: true,
      action: "accept", bidirectional: false, protocol: "tcp", ports: $ports, sources: [$from], destinations: [$to]}]}')
  NOTE="the edge reaches its upstreams on tcp $(jq -r 'join(",")' <<<"$2")"
  if [[ -n $existing ]] && same_policy "$body" "$(jq -c --arg id "$existing" 'map(select(.id == $id)) | first' <<<"$policies")"; then
    return 0
  elif [[ -n $existing ]]; then
    api PUT "$NETBIRD_API/api/policies/$existing" "$(netbird_pat)" "$body" >/dev/null || die "updating the edge's policy failed"
    NOTE+=" (changed)"
  else
    api POST "$NETBIRD_API/api/policies" "$(netbird_pat)" "$body" >/dev/null || die "creating the edge's policy failed"
  fi
}

same_policy() { # $1: the wanted body, $2: the policy as NetBird shows it (groups as objects)
  local shape='{enabled, rules: [.rules[] | {enabled, action, bidirectional, protocol, ports: ((.ports // []) | sort),
    sources: ([.sources[] | if type == "object" then .id else . end] | sort),
    destinations: ([.destinations[] | if type == "object" then .id else . end] | sort)}]}'
  [[ $(jq -cS "$shape" <<<"$1") == "$(jq -cS "$shape" <<<"$2")" ]]
}

# Once per account: every peer but the edge joins the homelab group, the same all-to-all policy
# is made over that group, and Default goes. Done in that order, so an interruption never leaves
# peers without the policy they had; a later run leaves the account's policies to the owner.
replace_default_policy() { # $1: the edge's peer ids (JSON; none before it joins), $2: the peers, $3: the groups → NOTE
  local policies default mesh_id members
  if [[ -n $(state_get .netbird.default_policy_replaced) ]]; then
    NOTE="Default replaced before"
    return 0
  fi
  policies=$(api GET "$NETBIRD_API/api/policies" "$(netbird_pat)") || die "listing NetBird's policies failed"
  mesh_id=$(group_id "$MESH_GROUP" "$3")
  members=$(jq -c --argjson edge "$1" --arg group "$MESH_GROUP" --argjson groups "$3" \
    '([.[] | select(.id as $id | $edge | index($id) | not) | .id] + [$groups[] | select(.name == $group) | .peers[].id]) | unique' <<<"$2")
  set_group_peers "$MESH_GROUP" "$members" "$3"
  if ! jq -e --arg name "$MESH_GROUP" 'any(.[]; .name == $name)' <<<"$policies" >/dev/null; then
    api POST "$NETBIRD_API/api/policies" "$(netbird_pat)" "$(jq -nc --arg name "$MESH_GROUP" --arg group "$mesh_id" \
      '{name: $name, description: "Every homelab peer reaches every other; the edge is not one of them", enabled: true,
        rules: [{name: $name, enabled: true, action: "accept", bidirectional: true, protocol: "all", sources: [$group], destinations: [$group]}]}')" >/dev/null ||
      die "creating the homelab policy failed"
  fi
  default=$(jq -r 'map(select(.name == "Default")) | first | .id // empty' <<<"$policies")
  if [[ -n $default ]]; then
    api DELETE "$NETBIRD_API/api/policies/$default" "$(netbird_pat)" >/dev/null || die "deleting NetBird's Default policy failed"
  fi
  state_set .netbird.default_policy_replaced "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  NOTE="Default replaced by $MESH_GROUP ($(jq 'length' <<<"$members") peer(s))"
}

# The edge's peers as far as NetBird and the running agent tell (JSON ids): the members of its
# group, and the peer at the address the agent reports when it runs — an edge enrolled by an
# older bootstrap is in no group of its own. None before the edge first joins.
edge_peer_ids() { # $1: the peers, $2: the groups
  local edge_ip
  edge_ip=$(agent_address 2>/dev/null) || edge_ip=""
  jq -c --arg group "$EDGE_GROUP" --arg ip "$edge_ip" --argjson groups "$2" \
    '([$groups[] | select(.name == $group) | .peers[].id] + [.[] | select($ip != "" and .ip == $ip) | .id]) | unique' <<<"$1"
}

# The edge's group holds the edge's peer and nothing else: its setup key put it there, and
# this keeps it so whatever the dashboard did since.
pin_edge_group() {
  local edge_ip peers edge_peer
  edge_ip=$(agent_address) || die "netbird-agent did not tell its address (netbird status --json)"
  peers=$(api GET "$NETBIRD_API/api/peers" "$(netbird_pat)") || die "listing NetBird's peers failed"
  edge_peer=$(jq -r --arg ip "$edge_ip" 'map(select(.ip == $ip)) | first | .id // empty' <<<"$peers")
  [[ -n $edge_peer ]] || die "NetBird lists no peer at the edge's address; is netbird-agent connected?"
  set_group_peers "$EDGE_GROUP" "[\"$edge_peer\"]" "$(netbird_groups)"
}

# The edge's NetBird address as its running agent reports it (client/status OutputOverview
# netbirdIp, "100.x.y.z/16"); fails while the agent does not run.
agent_address() {
  local status
  status=$(docker exec netbird-agent netbird status --json) || return 1
  jq -r '.netbirdIp // "" | split("/") | first' <<<"$status"
}

# shellcheck shell=bash disable=SC2034 # the results it sets (FINGERPRINT, STEP_NOTE, paths) are read by the runner and the other parts
# Sourced by bootstrap.sh: the host. Pre-flight checks before the graph runs, and the steps
# volume, data-dirs, pull and traefik of bootstrap.graph.

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
# (goauthentik/authentik Dockerfile `USER 1000`; lifecycle/ak only fixes /data's owner when
# started as root) and netbird-proxy's as netbird, uid 1000 (netbirdio/netbird v0.77.1
# proxy/Dockerfile `USER netbird:netbird`).
readonly UID_1000_DIRS=(authentik/data netbird-proxy/certs)

step_data_dirs() {
  local dir changed=()
  move_authentik_media
  for dir in "${UID_1000_DIRS[@]}"; do
    mkdir -p "$DATA/$dir"
    if [[ $(stat -c '%u:%g' "$DATA/$dir") != 1000:1000 ]]; then
      chown 1000:1000 "$DATA/$dir"
      changed+=("$dir")
    fi
  done
  if ((${#changed[@]} > 0)); then STEP_NOTE+="${STEP_NOTE:+, }owner set to 1000:1000: ${changed[*]}"; fi
  STEP_NOTE=${STEP_NOTE:-unchanged}
}

# Authentik keeps its files under /data since 2025.12, the former /media as /data/media
# (website/docs/releases/2025/v2025.12.md "Storage improvements": `mv ./media ./data/media`).
# An edge that ran an older Authentik has them in authentik/media: moved once, on the same
# file system, so the files and their owner stay as they are.
move_authentik_media() {
  local old="$DATA/authentik/media" new="$DATA/authentik/data/media"
  [[ -d $old ]] || return 0
  [[ ! -e $new ]] || die "both authentik/media and authentik/data/media exist under $DATA: Authentik reads only the second since 2025.12; move what the first holds into it, remove the first, then run again"
  mkdir -p "$DATA/authentik/data"
  mv "$old" "$new"
  STEP_NOTE="moved authentik/media to authentik/data/media (Authentik 2025.12's layout)"
}

step_pull() {
  # Compose pulls every image in parallel; every tag is pinned, so an image the daemon already
  # holds is the right one and is not fetched again (a rerun needs no registry).
  compose pull --quiet --policy missing
}

step_traefik() { start_services traefik; }

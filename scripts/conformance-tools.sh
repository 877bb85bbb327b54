#!/usr/bin/env bash
# Brings the real tools of test/conformance/ onto this machine, so the suite checks the bundle
# against what the VPS runs instead of doubles written here:
#   - Compose v2 and cloud-init from Debian trixie (the VPS image, debian-13), downloaded with
#     a PRIVATE apt source list and unpacked with dpkg-deb into the cache: nothing is
#     installed, no daemon starts, the machine's own apt configuration is never touched;
#   - from the machine's own Debian archive: PostgreSQL (the rotation test starts its own
#     server on a temp dir) and the python3 modules cloud-init's schema validator imports.
# Idempotent and quick when everything is present. Needs root for the apt-get install step
# only (and only when something is missing).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
# The test suite reads the same default (test/conformance/tools.ts).
readonly CACHE="${CONFORMANCE_TOOLS_DIR:-$REPO_ROOT/.cache/conformance-tools}"
readonly ROOTFS="$CACHE/root"
readonly STAMP="$CACHE/packages.txt"
readonly APT_DIR="$CACHE/apt"
# Trixie packages the suite unpacks. docker-compose is the Compose v2 CLI plugin
# (/usr/libexec/docker/cli-plugins/docker-compose, a static Go binary that runs without a
# daemon for `config`); cloud-init is pure python.
readonly TRIXIE_PACKAGES=(docker-compose cloud-init)
# From the machine's own archive: PostgreSQL for the rotation test; the python3 modules are
# the Depends of trixie's cloud-init 25.1 (python3-configobj, -jinja2, -jsonpatch,
# -jsonschema, -oauthlib, -requests, -yaml), which its schema command imports.
readonly HOST_PACKAGES=(postgresql python3 python3-configobj python3-jinja2 python3-jsonpatch
  python3-jsonschema python3-oauthlib python3-requests python3-yaml)

log() { printf '[conformance-tools] %s\n' "$*"; }
die() {
  printf '[conformance-tools] ERROR: %s\n' "$*" >&2
  exit 1
}

# One log line per step with its duration.
timed() { # $1: step name, rest: command
  local name=$1 started=$SECONDS
  shift
  "$@"
  log "$name: ready in $((SECONDS - started))s"
}

install_host_packages() {
  local pkg missing=()
  for pkg in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]} > 0)) || return 0
  ((EUID == 0)) || die "missing Debian packages (${missing[*]}): run this script as root, or apt-get install them"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's postgresql package creates and starts a cluster of its own; the tests never use
  # it (they start a private server), so it is left as the package configured it.
}

# Every apt-get/apt-cache call of the trixie side goes through these options: a source list,
# package lists and caches of our own, so the machine's apt state never sees trixie.
# The mirror this machine already uses for its own Debian release (trixie lives beside it):
# the first URIs of debian.sources, else Debian's CDN; CONFORMANCE_DEBIAN_MIRROR overrides.
debian_mirror() {
  local uri=""
  if [[ -n ${CONFORMANCE_DEBIAN_MIRROR-} ]]; then
    uri=$CONFORMANCE_DEBIAN_MIRROR
  elif [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(sed -n 's|^URIs: *\([^ ]*/debian\)/\{0,1\}$|\1|p' /etc/apt/sources.list.d/debian.sources | head -n 1)
  fi
  printf '%s' "${uri:-http://deb.debian.org/debian}"
}

trixie_apt_options() {
  TRIXIE_APT=(
    -o "Dir::Etc::SourceList=$APT_DIR/trixie.sources"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$APT_DIR/lists"
    -o "Dir::Cache=$APT_DIR/cache"
    -o "Dir::State::status=$APT_DIR/empty-status"
    # The download lands in a directory the _apt sandbox user may not write.
    -o "APT::Sandbox::User=root"
  )
}

write_trixie_source() {
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/debs"
  : >"$APT_DIR/empty-status"
  local mirror
  mirror=$(debian_mirror)
  # As the VPS sees trixie: the release, its updates and its security archive (beside the
  # main archive on the same host). debian-archive-keyring (bookworm's too) has trixie's keys.
  cat >"$APT_DIR/trixie.sources" <<EOF
Types: deb
URIs: $mirror
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $mirror-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

# "name=version" per package, as trixie offers it now.
trixie_candidates() {
  local pkg version
  for pkg in "${TRIXIE_PACKAGES[@]}"; do
    version=$(apt-cache "${TRIXIE_APT[@]}" policy "$pkg" | sed -n 's/^ *Candidate: //p')
    [[ -n $version && $version != "(none)" ]] || die "trixie has no candidate for $pkg"
    printf '%s=%s\n' "$pkg" "$version"
  done
}

update_trixie_lists() {
  apt-get "${TRIXIE_APT[@]}" update -qq
}

unpack_trixie_packages() { # $1: "name=version" lines
  local wanted=$1 deb
  rm -rf "$ROOTFS" "$APT_DIR/debs"
  mkdir -p "$ROOTFS" "$APT_DIR/debs"
  # shellcheck disable=SC2046 # one word per name=version line, none has spaces
  (cd "$APT_DIR/debs" && apt-get "${TRIXIE_APT[@]}" download -qq $(printf '%s' "$wanted"))
  for deb in "$APT_DIR"/debs/*.deb; do
    dpkg-deb -x "$deb" "$ROOTFS"
  done
  printf '%s' "$wanted" >"$STAMP"
}

# Runs each unpacked tool once, so a broken unpack fails here and not in the middle of a test.
smoke_test() {
  "$ROOTFS/usr/libexec/docker/cli-plugins/docker-compose" version >/dev/null
  PYTHONPATH="$ROOTFS/usr/lib/python3/dist-packages" /usr/bin/python3 -c 'import cloudinit.cmd.main, cloudinit.config.schema'
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || die "no PostgreSQL server binaries under /usr/lib/postgresql"
}

trixie_tools() {
  local wanted
  trixie_apt_options
  # Warm: what was unpacked is kept; the stamp lists exactly what is there. `--refresh`
  # asks trixie again (a point release may have moved a package).
  if [[ -f $STAMP && -x $ROOTFS/usr/libexec/docker/cli-plugins/docker-compose && ${1-} != --refresh ]]; then
    return 0
  fi
  write_trixie_source
  update_trixie_lists
  wanted=$(trixie_candidates)
  unpack_trixie_packages "$wanted"$'\n'
}

main() {
  local started=$SECONDS
  timed "debian packages (${HOST_PACKAGES[*]})" install_host_packages
  timed "trixie packages (${TRIXIE_PACKAGES[*]}) in ${CACHE#"$REPO_ROOT"/}" trixie_tools "$@"
  timed "smoke test" smoke_test
  log "tools: $(tr '\n' ' ' <"$STAMP")postgresql $(compgen -G '/usr/lib/postgresql/*/bin' | sed 's|.*/postgresql/\([^/]*\)/bin|\1|' | tr '\n' ' ')($((SECONDS - started))s)"
}

main "$@"

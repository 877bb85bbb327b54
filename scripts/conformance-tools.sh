#!/usr/bin/env bash
# Brings the real tools of test/conformance/ and test/engine/ onto this machine, so the suite
# checks the bundle against what the VPS runs instead of doubles written here:
#   - Compose v2, cloud-init and the Docker Engine (dockerd, containerd, the docker CLI) from
#     Debian trixie (the VPS image, debian-13), downloaded with a PRIVATE apt source list and
#     unpacked with dpkg-deb into the cache: nothing is installed, no daemon starts here (the
#     engine tests start their own), the machine's own apt configuration is never touched;
#   - runc from the machine's own archive (bookworm's 1.1.5: trixie's needs glibc 2.38);
#   - from the machine's own Debian archive: PostgreSQL (the rotation test starts its own
#     server on a temp dir), the python3 modules cloud-init's schema validator imports,
#     mmdebstrap, which makes the root filesystem of the engine tests' images (no registry
#     here): bookworm with PostgreSQL, Node.js, wget and busybox, cached as a tarball; and
#     iptables, which dockerd runs inside each container's network namespace for its embedded
#     DNS (service names on the compose network), even with --iptables=false for the host;
#     iproute2 for the network namespace the engine tests run the daemon in;
#   - from the npm registry, Renovate's own package (not installed: two files are kept), for
#     the Renovate configuration's test: its configuration schema and its docker-compose
#     manager's file patterns.
# Idempotent and quick when everything is present. Needs root for the apt-get install step and
# for making the image root filesystem (mmdebstrap --mode=root), each only when missing.
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
# daemon for `config`); cloud-init is pure python; unattended-upgrades gives the option names
# of its apt configuration (the user data sets its reboot window).
# jq is the one the bootstrap runs on the VPS (cloud-init installs trixie's); it needs glibc
# 2.38, so it runs through trixie's own loader and libc (libc6), unpacked beside it: see vps_bin.
readonly TRIXIE_PACKAGES=(docker-compose cloud-init docker.io docker-cli containerd unattended-upgrades jq libjq1 libonig5 libc6)
# Unpacked beside them from the machine's own archive.
readonly HOST_ARCHIVE_PACKAGES=(runc)
# From the machine's own archive: PostgreSQL for the rotation test; sqlite3, which the
# bootstrap runs on NetBird's store (as on the VPS) and the NetBird double keeps its accounts
# with; the python3 modules are
# the Depends of trixie's cloud-init 25.1 (python3-configobj, -jinja2, -jsonpatch,
# -jsonschema, -oauthlib, -requests, -yaml), which its schema command imports.
readonly HOST_PACKAGES=(postgresql python3 python3-configobj python3-jinja2 python3-jsonpatch
  python3-jsonschema python3-oauthlib python3-requests python3-yaml mmdebstrap iptables iproute2 sqlite3)
# The engine tests' image root filesystem (test/engine/images.ts reads the same path):
# PostgreSQL 15 is the real database of the authentik-postgres slot, Node.js runs the
# stand-ins, wget and busybox answer the compose file's own healthcheck commands, sqlite3 keeps
# the NetBird stand-in's accounts in store.db as netbird-server keeps them.
readonly IMAGE_ROOTFS="$CACHE/standin-rootfs.tar"
readonly IMAGE_PACKAGES=(postgresql-15 nodejs wget busybox bash sqlite3)
# Commands of the VPS that the bootstrap harness puts first on the bootstrap's PATH
# (test/conformance/tools.ts vpsBin reads the same path).
readonly VPS_BIN="$CACHE/vps-bin"
# Renovate's release whose files test/tooling/renovate.test.ts reads (the same path and version there).
readonly RENOVATE_VERSION=44.121.2
readonly RENOVATE_DIR="$CACHE/renovate-$RENOVATE_VERSION"
readonly RENOVATE_FILES=(package/renovate-schema.json package/dist/modules/manager/docker-compose/index.js)

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
  for pkg in "${HOST_ARCHIVE_PACKAGES[@]}"; do
    version=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
    [[ -n $version && $version != "(none)" ]] || die "this machine's archive has no candidate for $pkg"
    printf 'host:%s=%s\n' "$pkg" "$version"
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
  (cd "$APT_DIR/debs" && apt-get "${TRIXIE_APT[@]}" download -qq $(grep -v '^host:' <<<"$wanted"))
  # shellcheck disable=SC2046 # as above
  (cd "$APT_DIR/debs" && apt-get download -qq $(sed -n 's/^host://p' <<<"$wanted") 2>/dev/null)
  for deb in "$APT_DIR"/debs/*.deb; do
    dpkg-deb -x "$deb" "$ROOTFS"
  done
  printf '%s' "$wanted" >"$STAMP"
}

# trixie's jq started by trixie's loader with trixie's libc first on its library path: the
# whole process runs on trixie's glibc, whatever the machine's is. Paths are absolute, so
# the wrapper costs no lookup per call (the bootstrap runs jq some ninety times).
vps_bin() {
  local lib="$ROOTFS/usr/lib/x86_64-linux-gnu"
  mkdir -p "$VPS_BIN"
  printf '#!/bin/sh\n# trixie'"'"'s jq, as on the VPS: written by scripts/conformance-tools.sh.\nexec %q --library-path %q %q "$@"\n' \
    "$lib/ld-linux-x86-64.so.2" "$lib" "$ROOTFS/usr/bin/jq" >"$VPS_BIN/jq"
  chmod 0755 "$VPS_BIN/jq"
}

# Runs each unpacked tool once, so a broken unpack fails here and not in the middle of a test.
smoke_test() {
  [[ $("$VPS_BIN/jq" -n '"jq runs"') == '"jq runs"' ]] || die "trixie's jq does not run through $VPS_BIN/jq"
  "$ROOTFS/usr/libexec/docker/cli-plugins/docker-compose" version >/dev/null
  PYTHONPATH="$ROOTFS/usr/lib/python3/dist-packages" /usr/bin/python3 -c 'import cloudinit.cmd.main, cloudinit.config.schema'
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || die "no PostgreSQL server binaries under /usr/lib/postgresql"
  local binary
  for binary in usr/sbin/dockerd usr/bin/containerd usr/sbin/runc usr/bin/docker; do
    "$ROOTFS/$binary" --version >/dev/null || die "$binary from the unpacked packages does not run here"
  done
}

# The stand-in images' root filesystem, made once: a stamp beside the tarball lists its
# packages, so a change of the list makes a new one.
image_rootfs() {
  local list stamp="$IMAGE_ROOTFS.packages"
  list="$(printf '%s ' "${IMAGE_PACKAGES[@]}")without llvm"
  if [[ -f $IMAGE_ROOTFS && -f $stamp && $(<"$stamp") == "$list" ]]; then
    return 0
  fi
  ((EUID == 0)) || die "making the engine tests' root filesystem needs root (mmdebstrap --mode=root)"
  local partial="${IMAGE_ROOTFS%.tar}.partial.tar" # mmdebstrap writes a tarball when the name ends in .tar
  rm -rf "$IMAGE_ROOTFS" "$stamp" "$partial"
  # Left out, to keep the image small enough to load quickly into each new daemon: documents,
  # translations, locale sources, LLVM and the JIT's bitcode (the stand-in's PostgreSQL runs
  # with jit=off), the cluster Debian's postinst makes (the entrypoint makes its own) and apt's
  # lists and caches.
  local exclude dpkg_options=()
  for exclude in /usr/share/doc /usr/share/man /usr/share/locale /usr/share/i18n \
    '/usr/lib/x86_64-linux-gnu/libLLVM-*' '/usr/lib/x86_64-linux-gnu/libz3.so*' '/usr/lib/postgresql/*/lib/bitcode'; do
    dpkg_options+=(--dpkgopt="path-exclude=$exclude/*" --dpkgopt="path-exclude=$exclude")
  done
  # shellcheck disable=SC2016 # $1 is the hook's argument (the root directory), expanded by mmdebstrap's shell
  mmdebstrap --quiet --mode=root --variant=apt --include="$(IFS=,; printf '%s' "${IMAGE_PACKAGES[*]}")" \
    "${dpkg_options[@]}" --customize-hook='rm -rf "$1"/var/lib/postgresql/* "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$partial" "$(debian_mirror)"
  mv "$partial" "$IMAGE_ROOTFS"
  printf '%s' "$list" >"$stamp"
}

# Renovate's package, fetched with npm (its registry is what every test machine reaches), and
# only its schema and docker-compose manager kept; nothing of it runs here.
renovate_files() {
  [[ -f $RENOVATE_DIR/${RENOVATE_FILES[0]} && -f $RENOVATE_DIR/${RENOVATE_FILES[1]} ]] && return 0
  local partial="$RENOVATE_DIR.partial" tarball
  rm -rf "$partial" && mkdir -p "$partial"
  tarball="$(cd "$partial" && npm pack --silent "renovate@$RENOVATE_VERSION")" || die "npm pack renovate@$RENOVATE_VERSION failed"
  tar -xzf "$partial/$tarball" -C "$partial" "${RENOVATE_FILES[@]}"
  rm -f "$partial/$tarball"
  rm -rf "$RENOVATE_DIR" && mv "$partial" "$RENOVATE_DIR"
}

# Whether the stamp names every package this script unpacks (a package added to the lists
# since the last run makes it stale).
stamp_is_complete() {
  local pkg
  [[ -f $STAMP ]] || return 1
  for pkg in "${TRIXIE_PACKAGES[@]}" "${HOST_ARCHIVE_PACKAGES[@]/#/host:}"; do
    grep -q "^$pkg=" "$STAMP" || return 1
  done
}

trixie_tools() {
  local wanted
  trixie_apt_options
  # Warm: what was unpacked is kept; the stamp lists exactly what is there. `--refresh`
  # asks trixie again (a point release may have moved a package).
  if stamp_is_complete && [[ -x $ROOTFS/usr/sbin/dockerd && ${1-} != --refresh ]]; then
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
  # Both downloads wait on Debian's mirror more than on this machine: the image's root
  # filesystem is made while trixie's packages are fetched.
  timed "image root filesystem (${IMAGE_PACKAGES[*]}) in ${IMAGE_ROOTFS#"$REPO_ROOT"/}" image_rootfs &
  local image_job=$!
  timed "trixie packages (${TRIXIE_PACKAGES[*]}) in ${CACHE#"$REPO_ROOT"/}" trixie_tools "$@"
  timed "the VPS's commands in ${VPS_BIN#"$REPO_ROOT"/} (trixie's jq)" vps_bin
  timed "smoke test" smoke_test
  wait "$image_job" || die "the image root filesystem was not made (its error is above)"
  timed "renovate $RENOVATE_VERSION (schema, docker-compose manager) in ${RENOVATE_DIR#"$REPO_ROOT"/}" renovate_files
  log "tools: $(tr '\n' ' ' <"$STAMP")postgresql $(compgen -G '/usr/lib/postgresql/*/bin' | sed 's|.*/postgresql/\([^/]*\)/bin|\1|' | tr '\n' ' ')($((SECONDS - started))s)"
}

main "$@"

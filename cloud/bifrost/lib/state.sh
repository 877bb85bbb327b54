# shellcheck shell=bash disable=SC2034 # the results it sets (FINGERPRINT, STEP_NOTE, paths) are read by the runner and the other parts
# Sourced by bootstrap.sh: what the bootstrap records on the data root. Keyed fingerprints,
# bootstrap-state.json (mode 0600) and the one-time answers of minting calls.

# HMAC-SHA-256 under a random per-host key kept beside the data, so a fingerprint neither
# reveals the value nor can be checked against guesses without that key. Neither the value nor
# the key is ever an argument of a process (`ps` shows arguments to every user): see hmac_sha256.
fingerprint_of() { # $1: name → FINGERPRINT
  local -
  set +x
  local key_file="$DATA/.fingerprint-key"
  if [[ -z $FINGERPRINT_KEY ]]; then
    mkdir -p "$DATA"
    [[ -s $key_file ]] || write_atomically "$key_file" 0600 "$(openssl rand -hex 32)"
    FINGERPRINT_KEY=$(<"$key_file")
  fi
  FINGERPRINT=$(printf '%s' "${CONF[$1]}" | hmac_sha256 "$FINGERPRINT_KEY")
}

# HMAC-SHA-256 of stdin (RFC 2104) from two plain SHA-256 digests: H((K^opad) || H((K^ipad) || m)).
# The padded key blocks are written by bash's printf builtin into openssl's stdin, never passed
# as `openssl dgst -hmac KEY`. The key is used as its bytes (our key: the 64 hex characters of
# the key file, exactly one SHA-256 block), as `-hmac` did, so recorded fingerprints still match.
hmac_sha256() { # $1: key, at most 64 bytes → hex digest on stdout
  local -
  set +x
  local key=$1 inner='' outer='' i byte digest
  ((${#key} <= 64)) || die "an HMAC key longer than one SHA-256 block would need hashing first"
  for ((i = 0; i < 64; i++)); do
    byte=0
    ((i < ${#key})) && printf -v byte '%d' "'${key:i:1}"
    printf -v inner '%s\\x%02x' "$inner" $((byte ^ 0x36))
    printf -v outer '%s\\x%02x' "$outer" $((byte ^ 0x5c))
  done
  digest=$({
    printf '%b' "$outer"
    { printf '%b' "$inner" && cat; } | openssl dgst -sha256 -binary
  } | openssl dgst -sha256 -r)
  printf '%s\n' "${digest%% *}"
}

# What a failing service or command printed can hold what must not travel on (a token in a
# traceback, a user's e-mail), and the bootstrap's own output ends up in Pulumi state
# (pulumi-command records a command's stdout and stderr as its outputs). So it goes into a 0600
# file on the data root and only its path is printed; the newest KEPT_LOGS files stay.
keep_output() { # $1: a name for the file; stdin: the output → the file's path on stdout
  local dir="$DATA/bootstrap-logs" file
  (umask 077 && mkdir -p "$dir")
  file=$(mktemp "$dir/$(date -u +%Y%m%dT%H%M%SZ)-$1.XXXXXX")
  cat >"$file"
  find "$dir" -maxdepth 1 -type f -printf '%T@ %p\n' | sort -rn | tail -n +$((KEPT_LOGS + 1)) | cut -d' ' -f2- | xargs -r rm -f
  printf '%s' "$file"
}

# Steps run at the same time, so every read-modify-write holds the state's lock. Values reach
# jq through its environment (never its command line) and leave it on stdout only.
state_get() { # $1: jq path → the value, or nothing
  local -
  set +x
  [[ -f $STATE_FILE ]] || return 0
  jq -r "$1 // empty" "$STATE_FILE"
}

state_set() { # $1: jq path, $2: value (a string)
  local -
  set +x
  local lock_fd current='{}'
  exec {lock_fd}>"$STATE_FILE.lock"
  flock "$lock_fd"
  [[ -f $STATE_FILE ]] && current=$(<"$STATE_FILE")
  write_atomically "$STATE_FILE" 0600 "$(STATE_VALUE=$2 jq "$1 = env.STATE_VALUE" <<<"$current")"$'\n'
  exec {lock_fd}>&-
}

state_delete() { # $1: jq path
  local lock_fd
  exec {lock_fd}>"$STATE_FILE.lock"
  flock "$lock_fd"
  [[ ! -f $STATE_FILE ]] || write_atomically "$STATE_FILE" 0600 "$(jq "del($1)" "$STATE_FILE")"$'\n'
  exec {lock_fd}>&-
}

# A token from SOPS wins; else the one minted earlier into the state file; else nothing.
effective_token() { # $1: catalog key, $2: state path
  local -
  set +x
  if has_value "$1"; then
    printf '%s' "${CONF[$1]}"
  elif [[ -n $STATE_FILE ]]; then
    state_get "$2"
  fi
}

# A minting call's answer goes straight into a 0600 file on the data root before anything
# else happens, so an interruption after NetBird answered loses nothing: the next run finds
# the file and takes the value from it instead of minting again (NetBird answers /api/setup
# only once). The call runs in a session of its own (setsid), holding the record's lock until
# the answer is written: an interruption of the bootstrap (a signal to its process group, an
# SSH hang-up) cannot cut it off between NetBird's commit and the file, and the next run waits
# on the lock for it. Credentials and body reach it through its environment, never its
# command line. The file goes once the value is in the state file.
mint_once() { # $1: record name, $2: jq filter for the value, rest: api arguments → MINTED
  local -
  set +x
  local record="$DATA/.minted-$1.json" lock_fd
  exec {lock_fd}>"$record.lock"
  flock "$lock_fd"
  if ! jq -e "$2 | strings" "$record" >/dev/null 2>&1; then
    # shellcheck disable=SC2016 # the inner bash expands them
    if ! (umask 077 && MINT_AUTH=${5-} MINT_BODY=${6-} setsid --wait bash -c \
      "set -euo pipefail; $(declare -f api authorization_header)"$'\n''api "$1" "$2" "$MINT_AUTH" "$MINT_BODY"' \
      mint "$3" "$4" >"$record"); then
      rm -f "$record"
      exec {lock_fd}>&-
      return 1
    fi
  fi
  exec {lock_fd}>&-
  MINTED=$(jq -r "$2 // empty" "$record")
  [[ -n $MINTED ]]
}

# Returns once no one-time call of an earlier, interrupted run is still writing its answer.
await_minted() { # $1: record name
  local lock_fd
  exec {lock_fd}>"$DATA/.minted-$1.json.lock"
  flock "$lock_fd"
  exec {lock_fd}>&-
}

# A field of the answer mint_once kept (e.g. the minted object's id), before forget_minted.
minted_field() { jq -r "$2 // empty" "$DATA/.minted-$1.json"; } # $1: record name, $2: jq filter

forget_minted() { rm -f "$DATA/.minted-$1.json" "$DATA/.minted-$1.json.lock"; }

# shellcheck shell=bash
# Sourced by bootstrap.sh: calling the HTTP APIs of NetBird and Authentik with curl, the token
# in a header read from a file descriptor, never on a command line.

# curl with the token in a header read from a file descriptor, never on its command line
# (the process substitution must stand on curl's own command line to stay open for it); a
# request body, when given, comes on stdin. Prints the response body.
api() { # $1: METHOD, $2: URL, $3: "Token …", "Bearer …" or empty, $4: body or empty
  local -
  set +x
  local method=$1 url=$2 authorization=$3 body=${4-}
  local args=(--silent --show-error --fail --max-time 30 -X "$method" -H 'Accept: application/json')
  if [[ -n $body ]]; then
    curl "${args[@]}" -H @<(authorization_header "$authorization") -H 'Content-Type: application/json' --data-binary @- "$url" <<<"$body"
  else
    curl "${args[@]}" -H @<(authorization_header "$authorization") "$url"
  fi
}

authorization_header() { # $1: credentials or empty → the header line, or nothing
  local -
  set +x
  [[ -z $1 ]] || printf 'Authorization: %s\n' "$1"
}

# Retries a call until it succeeds or WAIT_TIMEOUT passes; the last error is shown on failure.
api_until() { # $1: what (for the error), rest: api arguments → the response body
  local -
  set +x
  local what=$1 deadline=$((SECONDS + WAIT_TIMEOUT)) errors response
  shift
  errors=$(mktemp)
  while :; do
    if response=$(api "$@" 2>"$errors"); then
      rm -f "$errors"
      printf '%s' "$response"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      printf '[bootstrap] last error: %s\n' "$(tail -n 1 "$errors")" >&2
      rm -f "$errors"
      die "$what did not succeed within ${WAIT_TIMEOUT}s"
    fi
    sleep "$API_RETRY_DELAY"
  done
}

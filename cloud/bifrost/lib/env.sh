# shellcheck shell=bash
# Sourced by bootstrap.sh: reading .env and .secrets.env (data, never sourced) into CONF, and
# writing files whole.

# The exact reverse of components/secrets/render.ts quoteEnvValue: inside double quotes only \\, \"
# and \$ are escapes; anything else that render.ts cannot produce is rejected.
env_unescape() { # $1: text between the quotes → UNESCAPED; returns 1 when malformed
  local -
  set +x
  local rest=$1 escape='^([^\"]*)\\([\"$])(.*)$'
  UNESCAPED=""
  while [[ $rest =~ $escape ]]; do
    UNESCAPED+=${BASH_REMATCH[1]}${BASH_REMATCH[2]}
    rest=${BASH_REMATCH[3]}
  done
  [[ $rest != *[\\\"]* ]] || return 1
  UNESCAPED+=$rest
}

load_env_file() { # $1: file name in BIFROST_DIR
  local -
  set +x
  local file=$1 line name number=0 assignment='^([A-Za-z_][A-Za-z0-9_]*)="(.*)"$'
  [[ -f $file ]] || die "$BIFROST_DIR/$file is missing"
  while IFS= read -r line || [[ -n $line ]]; do
    number=$((number + 1))
    [[ -z $line || $line == \#* ]] && continue
    [[ $line =~ $assignment ]] || die "$file line $number is not NAME=\"value\""
    name=${BASH_REMATCH[1]}
    env_unescape "${BASH_REMATCH[2]}" || die "$file line $number ($name) has a stray quote or backslash"
    CONF["$name"]=$UNESCAPED
  done <"$file"
}

has_value() { # $1: name → true when it is set and non-empty
  local -
  set +x
  [[ -n ${CONF[$1]-} ]]
}

write_atomically() { # $1: target, $2: mode, $3: content
  local -
  set +x
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  chmod "$2" "$tmp"
  printf '%s' "$3" >"$tmp"
  mv -f "$tmp" "$1"
}

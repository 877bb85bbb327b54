#!/usr/bin/env bash
# The authentik-postgres image's entrypoint: Debian's real PostgreSQL, started the way the
# official image's docker-entrypoint.sh starts it (docker-library/postgres 16/alpine3.22,
# commit 6edb0a8c) where bootstrap.sh relies on it:
#   - as root, PGDATA is made the postgres user's (uid 70, as in the Alpine image) with mode
#     0700, then the script runs itself again as that user;
#   - on an EMPTY data directory only (no PG_VERSION): initdb with POSTGRES_USER as the
#     superuser and POSTGRES_PASSWORD through --pwfile, `host all all all scram-sha-256`
#     appended to pg_hba.conf, POSTGRES_DB created on a socket-only temporary server;
#     a data directory that exists keeps its roles and passwords whatever the environment says;
#   - then `postgres` listening on every address.
set -Eeuo pipefail

readonly PGDATA=${PGDATA:-/var/lib/postgresql/data}

log() { printf '[postgres-entrypoint] %s\n' "$*"; }

as_postgres_again() {
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 00700 "$PGDATA"
  find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
  chown postgres:postgres /var/run/postgresql
  chmod 03775 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
}

init_database() {
  # The official image refuses to initialise without a password (docker_verify_minimum_env).
  if [[ -z ${POSTGRES_PASSWORD-} ]]; then
    log "Error: Database is uninitialized and superuser password is not specified." >&2
    exit 1
  fi
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") -D "$PGDATA" >/dev/null
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c jit=off -p 5432" -w start >/dev/null
  if [[ $POSTGRES_DB != postgres ]]; then
    psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;' >/dev/null
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  log "PostgreSQL init process complete; ready for start up."
}

main() {
  : "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
  if ((EUID == 0)); then
    as_postgres_again "$@"
  fi
  if [[ ! -s $PGDATA/PG_VERSION ]]; then
    init_database
  else
    log "PostgreSQL Database directory appears to contain a database; Skipping initialization"
  fi
  # The image leaves LLVM out (scripts/conformance-tools.sh): no JIT.
  exec postgres -D "$PGDATA" -c listen_addresses='*' -c jit=off
}

main "$@"

#!/bin/sh
# The stand-ins' one entry point: images.ts links every program name the compose file and
# bootstrap.sh call to this file. The health commands Docker runs every few seconds answer
# here, in the shell, with the request the real command makes; a Node.js start per probe would
# cost the 2-core test machine more CPU than all the stand-ins' own work. Everything else runs
# the stand-in program (main.ts).
set -eu
program=$(basename "$0")
case "$program $*" in
"traefik healthcheck --ping")
  # traefik cmd/healthcheck/healthcheck.go (v3.7.9): HEAD /ping on the traefik entry point
  # (:8080 unless configured), healthy on 200 only. GNU wget's --spider sends HEAD.
  exec wget -q --spider http://127.0.0.1:8080/ping
  ;;
"ak healthcheck")
  # authentik 2025.10.4 cmd/server/healthcheck.go: the mode lifecycle/ak recorded; the server
  # sends HEAD /-/health/live/ and is healthy below status 400, the worker checks its process.
  case "$(cat /tmp/authentik-mode 2>/dev/null || true)" in
  server) exec wget -q --spider http://127.0.0.1:9000/-/health/live/ ;;
  worker) exec test -f /tmp/authentik-worker-ready ;;
  *) exit 1 ;;
  esac
  ;;
"netbird status --check ready")
  # netbird client/cmd/status.go (v0.77.1): asks the daemon over unix:///var/run/netbird.sock
  # and succeeds only when it reports ready. The stand-in's daemon is the container's main
  # process and keeps its state in this file (main.ts netbirdAgent), so the file lives and
  # dies with the daemon, as the socket does.
  exec test "$(cat /var/run/netbird-standin.state 2>/dev/null || true)" = ready
  ;;
esac
exec node /opt/standin/test/engine/standin/main.js "$program" "$@"

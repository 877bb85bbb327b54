#!/usr/bin/env bash
# Runs the command whose words core.sh put in CORE_ARGC and CORE_ARG_0…N, exactly as given.
# `sops exec-env` hands its command to `/bin/sh -c` (getsops/sops cmd/sops/subcommand/exec/
# exec_unix.go), so arguments quoted for bash ($'…' from printf %q) would be mangled by dash;
# this fixed command string carries no argument, and the words travel in the environment.
set -euo pipefail

words=()
for ((i = 0; i < ${CORE_ARGC:?exec-args.sh: CORE_ARGC is not set}; i++)); do
  name="CORE_ARG_${i}"
  words+=("${!name}")
  unset "$name"
done
unset CORE_ARGC
exec "${words[@]}"

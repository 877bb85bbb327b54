#!/usr/bin/env bash
# Initialises the cluster's OpenBao once (`just openbao-init`). OpenBao unseals itself with the
# static seal (cloud/cluster/openbao-values.yaml, key OPENBAO_UNSEAL_KEY), so init makes no unseal
# key: `bao operator init` with one recovery share runs in the OpenBao pod through `kubectl exec`,
# and its JSON answer goes through a pipe and jq straight into secrets/bootstrap.sops.yaml
# (`sops set --value-stdin`): the recovery key as OPENBAO_RECOVERY_KEY, the root token as
# OPENBAO_TOKEN. Neither is ever printed, written to a file outside the SOPS file, or put on a
# command line. Refuses an OpenBao that is initialised or not on the static seal.
set -euo pipefail

project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly project_root
readonly sops_file="secrets/bootstrap.sops.yaml"
readonly probe_key="OPENBAO_INIT_PROBE"

LOG_TAG=openbao-init
# shellcheck source=scripts/lib.sh
source "${project_root}/scripts/lib.sh"

check_tools() {
  local tool missing=()
  for tool in kubectl sops jq node; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] || die "not installed: ${missing[*]} (see README: Prerequisites)"
}

check_sops() { check_sops_for_set "$sops_file"; }

# Proves sops can decrypt and rewrite the file before OpenBao hands out a key that exists only once.
probe_sops_write() {
  # step runs this in an `||` list, where errexit is off: each failure is passed on by hand.
  printf '"probe"' | sops set --value-stdin "$sops_file" "[\"${probe_key}\"]" &&
    sops unset "$sops_file" "[\"${probe_key}\"]"
}

# The kubeconfig and context of the cluster stack (stacks/Pulumi.<stack>.yaml), the same the stack uses.
read_kube_target() {
  local stack="$1" file="stacks/Pulumi.${1}.yaml" target
  [[ -f "$file" ]] || die "no stack config ${file}"
  # shellcheck disable=SC2016 # JavaScript, not shell: node expands ${…} itself.
  target="$(node -e '
    const config = require("yaml").parse(require("fs").readFileSync(process.argv[1], "utf8")).config ?? {};
    const home = require("os").homedir();
    const kubeconfig = String(config["core:kubeconfig"] ?? "~/.kube/config").replace(/^~(?=\/)/, home);
    const context = config["core:kubeContext"];
    if (typeof context !== "string" || context === "") { console.error("core:kubeContext is not set"); process.exit(1); }
    process.stdout.write(`${kubeconfig}\n${context}\n`);
  ' "$file")" || die "cannot read the kubeconfig and context from ${file}"
  { read -r kubeconfig && read -r kube_context; } <<<"$target"
  [[ -r "$kubeconfig" ]] || die "core:kubeconfig of ${stack}: ${kubeconfig} cannot be read"
}

# bao CLI in the OpenBao pod; BAO_ADDR is set in the container by the OpenBao Helm chart.
bao_in_pod() {
  kubectl --kubeconfig "$kubeconfig" --context "$kube_context" --namespace "$namespace" exec "$pod" -- bao "$@"
}

# `bao status -format=json` (openbao v2.6.2 command/format.go SealStatusOutput, api/sys_seal.go
# SealStatusResponse: type, initialized, sealed, recovery_seal) into $status; it exits 0 when
# unsealed, 2 when sealed, 1 on error (command/status.go).
read_status() {
  local rc=0
  status="$(bao_in_pod status -format=json)" || rc=$?
  [[ $rc -eq 0 || $rc -eq 2 ]] ||
    die "bao status failed in ${namespace}/${pod} (exit ${rc}); the pod starts only once the Secret openbao/openbao-unseal-key exists: run just core ${stack} up first"
}

refuse_initialised_or_not_static() {
  local status seal
  read_status
  seal="$(jq -r 'if .recovery_seal == true then .type else "shamir" end' <<<"$status")"
  [[ "$seal" == static ]] ||
    die "OpenBao in ${namespace}/${pod} is on the ${seal} seal, not the static seal: install it with cloud/cluster/openbao-values.yaml (README: The cluster stack)"
  case "$(jq -r '.initialized' <<<"$status")" in
    false) return 0 ;;
    true) die "OpenBao in ${namespace}/${pod} is already initialised; refusing to run again" ;;
    *) die "bao status gave no 'initialized' field" ;;
  esac
}

# /sys/init unseals an auto-unsealed server before it answers (openbao v2.6.2 http/sys_init.go,
# UnsealWithStoredKeys), so a sealed server here means the static seal could not read its key.
check_unsealed() {
  local status
  read_status
  [[ "$(jq -r '.sealed' <<<"$status")" == false ]] ||
    die "OpenBao is initialised but sealed: it could not use its static seal key (kubectl logs ${pod} -n ${namespace})"
}

# Sets KEY in the SOPS file to the JSON string jq's FILTER selects from the init answer on stdin.
store_field() {
  local filter="$1" key="$2"
  jq -ce "${filter} | select(type == \"string\" and length > 0)" | sops set --value-stdin "$sops_file" "[\"${key}\"]"
}

# The init answer lives only in this shell's memory; printf is a builtin, so it is on no command
# line. With an auto-unseal seal, init makes no unseal key share and one recovery share is asked
# for (command/operator_init.go: -recovery-shares; vault/init.go stores the root key in the seal).
# Both values are stored even when one fails, and the message names what is missing.
init_and_store() {
  local answer recovery_stored=true
  answer="$(bao_in_pod operator init -recovery-shares=1 -recovery-threshold=1 -format=json)" || die "bao operator init failed"
  printf '%s' "$answer" | store_field '.recovery_keys_b64[0]' OPENBAO_RECOVERY_KEY || recovery_stored=false
  if ! printf '%s' "$answer" | store_field '.root_token' OPENBAO_TOKEN; then
    answer=""
    $recovery_stored && die "the recovery key is stored, the root token is not: make a new one with bao operator generate-root (it asks for the recovery key)"
    die "OpenBao is initialised but neither its recovery key nor its root token could be stored; neither was shown anywhere. Wipe OpenBao's storage (its PVC) and run again."
  fi
  answer=""
  $recovery_stored ||
    die "the root token is stored, the recovery key is not (it was not shown anywhere): OpenBao unseals itself, but a lost root token could not be replaced; wipe OpenBao's storage and run again while nothing depends on it"
}

main() {
  stack="${1:-cluster}"
  namespace="${OPENBAO_NAMESPACE:-openbao}"
  pod="${OPENBAO_POD:-openbao-0}"
  cd "$project_root"
  check_tools
  step "check sops and ${sops_file}" check_sops
  step "read the kube target of stack ${stack}" read_kube_target "$stack"
  step "check sops can rewrite ${sops_file}" probe_sops_write
  step "check OpenBao ${namespace}/${pod} is on the static seal and not initialised" refuse_initialised_or_not_static
  step "initialise OpenBao, store recovery key and root token in ${sops_file}" init_and_store
  step "check OpenBao unsealed itself" check_unsealed
  log "next: just core ${stack} up (configures OpenBao), then replace OPENBAO_TOKEN with a scoped token (README: The cluster stack)"
}

main "$@"

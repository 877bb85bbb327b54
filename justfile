# homelab core — the front door. `just --list` shows every recipe.
set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments

# First run: age key, its recipient in .sops.yaml, the encrypted secrets file with every key made or asked for (hidden), git hooks
init stack="hetzner":
    @bash scripts/init.sh "$1"

# Run Pulumi for one stack under the decrypted SOPS environment: just core hetzner up|preview|destroy|refresh
core stack action *pulumi_args:
    @bash scripts/core.sh "$@"

# Check a stack's SOPS file (a sandbox's own, else secrets/bootstrap.sops.yaml) against the catalog, without touching any resource
secrets-check stack="hetzner":
    @bash scripts/core.sh "$1" check-secrets

# Edit a stack's encrypted secrets file in place (sops decrypts into your editor, never onto disk); default: production's
secrets-edit stack="-":
    @bash scripts/core.sh "$1" edit-secrets

# Write what the stack would ship (bundle, .env, .secrets.env) into DIR, every secret as <redacted:NAME:fingerprint>
bundle-render stack dir:
    @bash scripts/core.sh "$1" bundle-render "$2"

# Secrets lifecycle: new KEY | rotate KEY (value made as the catalog says, never shown) | recipients list|add|remove AGE_PUBKEY; STACK last for a sandbox's file
secrets +args:
    @bash scripts/secrets.sh "$@"

# Initialise the cluster's OpenBao once; its unseal key and root token go straight into the SOPS file
openbao-init stack="cluster":
    @bash scripts/openbao-init.sh "$1"

# Name example values left in a stack's config and placeholder recipients in .sops.yaml (no sops needed)
doctor stack="hetzner":
    @node_modules/.bin/ts-node --transpile-only scripts/doctor.ts "$1"

# Install the git hooks (.githooks/pre-commit refuses a secrets file without sops metadata)
hooks:
    @git config core.hooksPath .githooks && echo "git hooks: .githooks (pre-commit refuses unencrypted secrets)"

# Regenerate the README's catalog table and secrets/bootstrap.sops.yaml.example from the catalog
docs:
    @npm run docs

# Unpack the conformance tools, install the locked dependencies and run every test
test:
    @bash scripts/conformance-tools.sh
    @npm cit

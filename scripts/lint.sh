#!/usr/bin/env bash
# Lints what the tests lint too, for a quick run before a commit: every shell file and the types.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

shell_files() {
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [[ "$f" == *.sh || "$(head -c 64 "$f" 2>/dev/null)" == '#!/usr/bin/env bash'* ]]; then printf '%s\0' "$f"; fi
    done
}

# --external-sources: the stand-ins of test/docker-double/host-bin source their shared _common.bash.
shell_files | xargs -0 -r shellcheck --external-sources
npx tsc --noEmit
echo "lint: shellcheck and tsc clean"

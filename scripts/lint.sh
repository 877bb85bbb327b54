#!/usr/bin/env bash
# Lints what the tests lint too, for a quick run before a commit: every shell file and the types.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

shell_files() {
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      [[ "$f" == *.sh || "$(head -c 64 "$f" 2>/dev/null)" == '#!/usr/bin/env bash'* ]] && printf '%s\0' "$f"
    done
}

shell_files | xargs -0 -r shellcheck
npx tsc --noEmit
echo "lint: shellcheck and tsc clean"

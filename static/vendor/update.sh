#!/usr/bin/env bash
# Re-vendor the assets listed in VERSIONS from the npm registry (run by `make vendor`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
grep -v '^#' "$here/VERSIONS" | while read -r spec path _arrow target; do
  [ -n "$spec" ] || continue
  (cd "$work" && rm -rf package && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
  cp "$work/package/$path" "$here/$target"
  # Files that do not name their version (e.g. plotly.js's dist/plotly.css) get a banner,
  # so the committed file says which release it is.
  version=${spec##*@}
  if ! grep -qF "$version" "$here/$target"; then
    case "$target" in
      *.css|*.js) { printf '/* %s %s */\n' "$spec" "$path"; cat "$work/package/$path"; } > "$here/$target" ;;
    esac
  fi
  rm -rf "$work/package"
  echo "vendored $spec -> static/vendor/$target"
done

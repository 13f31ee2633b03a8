#!/usr/bin/env bash
# Re-vendor the assets listed in VERSIONS from the npm registry (run by `make vendor`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Drop a trailing source-map comment: it names a .map file that is not vendored, and
# collectstatic's manifest storage fails on a reference to a missing file.
strip_map() { sed -E '/^[[:space:]]*(\/\/|\/\*)# sourceMappingURL=[^ ]*( \*\/)?[[:space:]]*$/d' "$1"; }
grep -v '^#' "$here/VERSIONS" | while read -r spec path _arrow target; do
  [ -n "$spec" ] || continue
  (cd "$work" && rm -rf package && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
  case "$target" in
    *.css|*.js) strip_map "$work/package/$path" > "$here/$target" ;;
    *) cp "$work/package/$path" "$here/$target" ;;
  esac
  # Files that do not name their version (e.g. plotly.js's dist/plotly.css, a LICENSE)
  # get a banner, so the committed file says which release it is.
  version=${spec##*@}
  if ! grep -qF "$version" "$here/$target"; then
    case "$target" in
      *.css|*.js) { printf '/* %s %s */\n' "$spec" "$path"; strip_map "$work/package/$path"; } > "$here/$target" ;;
      *) { printf '[%s %s]\n\n' "$spec" "$path"; cat "$work/package/$path"; } > "$here/$target" ;;
    esac
  fi
  rm -rf "$work/package"
  echo "vendored $spec -> static/vendor/$target"
done

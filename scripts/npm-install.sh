#!/usr/bin/env bash
# npm ci in each given folder that has a package-lock.json, only when the lock file changed.
set -euo pipefail
for dir in "$@"; do
  [ -f "$dir/package-lock.json" ] || continue
  stamp="$dir/node_modules/.installed-lock"
  if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then continue; fi
  echo "npm ci in $dir" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
done

#!/usr/bin/env bash
# Creates or updates .venv/ (gitignored) with tests/python/requirements.txt; prints its python.
# Re-installs only when requirements.txt changed. Falls back to Debian's python3-venv (as root)
# when the first python3 on PATH cannot make a venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.venv"; req="$root/tests/python/requirements.txt"
if [ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/.requirements.installed"; then
  echo "$venv/bin/python"; exit 0
fi
rm -rf "$venv"
if ! python3 -m venv "$venv" >/dev/null 2>&1; then
  rm -rf "$venv"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "venv: python3 -m venv failed; installing Debian's python3-venv" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
  fi
  python3 -m venv "$venv" || /usr/bin/python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
cp "$req" "$venv/.requirements.installed"
echo "$venv/bin/python"

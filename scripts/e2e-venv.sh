#!/usr/bin/env bash
# Creates (idempotently) the Python virtualenv used by the end-to-end suite in Tests/e2e:
# the official openai and anthropic SDKs, httpx and pytest, as listed in
# Tests/e2e/requirements.txt. Re-installs only when that list changes.
#
#   scripts/e2e-venv.sh            # creates/updates .venv, prints its python
#   .venv/bin/python -m pytest Tests/e2e -q
#
# Needs only python3 (with venv and pip) and access to PyPI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CHAPERONE_E2E_VENV:-$ROOT/.venv}"
REQUIREMENTS="$ROOT/Tests/e2e/requirements.txt"
PYTHON="${PYTHON:-python3}"

if [[ ! -f "$REQUIREMENTS" ]]; then
    echo "e2e-venv: missing $REQUIREMENTS" >&2
    exit 1
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "e2e-venv: $PYTHON not found" >&2
    exit 1
fi

hash_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -c1-16
    else
        "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest()[:16])' "$1"
    fi
}
STAMP="$VENV/.stamp-$(hash_of "$REQUIREMENTS")"

if [[ -f "$STAMP" && -x "$VENV/bin/python" ]]; then
    echo "$VENV/bin/python"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "e2e-venv: creating $VENV" >&2
    if ! "$PYTHON" -m venv "$VENV"; then
        echo "e2e-venv: '$PYTHON -m venv' failed (on Debian: apt-get install python3-venv)" >&2
        rm -rf "$VENV"
        exit 1
    fi
fi

echo "e2e-venv: installing $(grep -cv '^\s*\(#\|$\)' "$REQUIREMENTS") packages from $REQUIREMENTS" >&2
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2 || true
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
"$VENV/bin/python" -c 'import openai, anthropic, httpx, pytest' >&2

rm -f "$VENV"/.stamp-*
touch "$STAMP"
echo "$VENV/bin/python"

#!/bin/sh
# The one test command: sets up what the suite needs on a fresh machine, then runs everything.
#   sh tests/run.sh            whole suite (unit, cli, interop, conformance, sync, watch, browser) on the current
#                              Python, and the package's unit tests on Python 3.9 and on PyPy
#   sh tests/run.sh -k NAME    extra arguments go to pytest
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)
# The venvs hold third-party code, which has no place in the checkout: they live in the user's cache, one set per
# checkout, and tests/.venv is a link to them (so `tests/.venv/bin/python …`, as the READMEs write it, works).
# The 3.9 and PyPy venvs live inside the main one: rebuilt with it.
venv="${XDG_CACHE_HOME:-$HOME/.cache}/madace-status-tests/$(printf '%s' "$repo" | cksum | cut -d' ' -f1)/venv"
link="$repo/tests/.venv"
venv39="$venv/py39"
python=${PYTHON:-python3}

# kosoku (the Autobahn runner) needs Python 3.10+; the package itself is checked on 3.9 below.
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "tests/run.sh: $python is older than 3.10; set PYTHON to a newer interpreter" >&2; exit 1; }

# The venvs are rebuilt when pyproject.toml or this layout number changes (bump it when the set-up changes).
VENV_LAYOUT=2
stamp() { { cat pyproject.toml; echo "$VENV_LAYOUT"; } | cksum | cut -d' ' -f1; }

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$(stamp)" ]; then
    echo "== creating $venv and installing .[test]"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    # Build from a scratch copy so the checkout gets no build/ or *.egg-info litter.
    build=$(mktemp -d)
    cp -r pyproject.toml README.md madace_status "$build/"
    "$venv/bin/python" -m pip install -q "$build[test]"
    rm -rf "$build"
    stamp > "$venv/.stamp"
fi
if [ -e "$link" ] && [ ! -L "$link" ]; then
    rm -rf "$link"  # an earlier layout's venv inside the checkout
fi
ln -sfn "$venv" "$link"
# The installed copy (for the console script) follows the checkout: reinstall it when the package changed.
package_stamp() { find madace_status -type f ! -name '*.pyc' -exec cksum {} + | sort | cksum | cut -d' ' -f1; }
if [ "$(cat "$venv/.package-stamp" 2>/dev/null)" != "$(package_stamp)" ]; then
    build=$(mktemp -d)
    cp -r pyproject.toml README.md madace_status "$build/"
    "$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$build"
    rm -rf "$build"
    package_stamp > "$venv/.package-stamp"
fi

# Python 3.9 is the oldest supported version: the package's unit tests run on it too.
py39=""
for candidate in python3.9 /root/.pyenv/versions/3.9*/bin/python3.9; do
    # pyenv's shims exist even when they cannot run: ask the interpreter itself.
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' >/dev/null 2>&1; then
        py39=$candidate; break
    fi
done
if [ -z "$py39" ]; then
    echo "tests/run.sh: no Python 3.9 found (looked for python3.9 and pyenv's 3.9); it is needed to prove 3.9 support" >&2
    exit 1
fi
if [ ! -x "$venv39/bin/python" ] || [ "$(cat "$venv39/.stamp" 2>/dev/null)" != "$(stamp)" ]; then
    echo "== creating $venv39 (Python 3.9) for the unit tests"
    rm -rf "$venv39"
    "$py39" -m venv "$venv39"
    "$venv39/bin/python" -m pip install -q pytest hypothesis
    stamp > "$venv39/.stamp"
fi

# Debian packages the suite needs, installed with apt-get when missing (CI is a fresh machine).
apt_install() {
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo"
    else
        echo "tests/run.sh: $* missing, and installing it needs root (apt-get install $*)" >&2
        exit 1
    fi
    echo "== installing $* with apt-get"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# tests/browser drives Debian's Chromium through Playwright (never `playwright install`).
# The emoji font is for the dashboard's 🟢/🟡/🔴 indicator in the screenshots the tests save.
missing=""
[ -x /usr/bin/chromium ] || missing="chromium"
# the font on its own too: a machine with Chromium but no emoji font draws the indicator as an empty box
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing="$missing fonts-noto-color-emoji"
# curl: the README's `curl -N …/api/events`, run as written by tests/sync/test_sse.py
command -v curl >/dev/null 2>&1 || missing="$missing curl"
# git: the flow history is read from it (tests/sync/test_history_git.py builds real repositories)
command -v git >/dev/null 2>&1 || missing="$missing git"
# nginx, caddy and openssl: tests/deploy and tests/browser run the shipped proxy configurations for real, over TLS
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing="$missing nginx"
[ -x /usr/bin/caddy ] || command -v caddy >/dev/null 2>&1 || missing="$missing caddy"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"  # checks the shipped units offline
[ -z "$missing" ] || apt_install $missing

# PyPy is supported too: the package's unit tests also run on Debian's pypy3 (Python 3.9).
command -v pypy3 >/dev/null 2>&1 || apt_install pypy3
venvpypy="$venv/pypy"
if [ ! -x "$venvpypy/bin/python" ] || [ "$(cat "$venvpypy/.stamp" 2>/dev/null)" != "$(stamp)" ]; then
    echo "== creating $venvpypy (PyPy) for the unit tests"
    rm -rf "$venvpypy"
    pypy3 -m venv "$venvpypy"
    "$venvpypy/bin/python" -m pip install -q pytest hypothesis
    stamp > "$venvpypy/.stamp"
fi

status=0
times=""
# stage NAME COMMAND...: runs one stage, remembers its time and whether it failed (the others still run).
stage() {
    name=$1; shift
    echo "== $name"
    start=$(date +%s)
    "$@" || status=1
    times="$times$(printf '%6ss  %s' "$(($(date +%s) - start))" "$name")
"
}

# The package's annotations: mypy --strict on the whole package (pyproject.toml [tool.mypy]).
stage "type check (mypy --strict)" "$venv/bin/python" -m mypy
stage "unit tests on $("$venv39/bin/python" --version 2>&1) (package on sys.path, not installed)" \
    "$venv39/bin/python" -m pytest -q -p no:cacheprovider tests/unit
stage "unit tests on $("$venvpypy/bin/python" -c 'import platform; print(platform.python_implementation(), platform.python_version())')" \
    "$venvpypy/bin/python" -m pytest -q -p no:cacheprovider tests/unit
stage "whole suite on $("$venv/bin/python" --version 2>&1)" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" tests

echo "== time per stage"
printf '%s' "$times"
exit $status

#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The servers the suite starts on loopback (it never uses a system service),
# openssl for the throwaway TLS certificates of rediss:// tests, and Debian's
# chromium, which the web monitor's browser test drives (headless).
missing=""
command -v redis-server >/dev/null || missing="$missing redis-server"
command -v rabbitmq-server >/dev/null || missing="$missing rabbitmq-server"
command -v openssl >/dev/null || missing="$missing openssl"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
# Builds the Cython hot path in place (editable install) and installs test tools.
python3 -m pip install -q -e '.[test]' 2>&1 | { grep -v -e '^WARNING' -e 'notice' >&2 || true; }
# Django 6 needs Python >= 3.12 (pyenv has it here): the Django tests run there too, in a
# venv of their own (tests/contrib/django/test_django6.py), besides Django 5.2 on this Python.
py312=""
for candidate in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 python3.12 python3.13; do
    if "$candidate" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
        py312="$candidate"; break
    fi
done
if [ -n "$py312" ]; then
    [ -x .venvs/django6/bin/python ] || "$py312" -m venv .venvs/django6
    .venvs/django6/bin/python -m pip install -q -e . 'Django>=6,<7' 'pytest>=8' \
        'pytest-timeout>=2.3' 2>&1 | { grep -v -e '^WARNING' -e 'notice' >&2 || true; }
fi
# This build must have compiled the extensions: a silent fallback fails the suite.
export COREKIT_EXPECT_EXTENSIONS=1
exec python3 -m pytest -n 2 -q "$@"

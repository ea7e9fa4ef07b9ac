#!/usr/bin/env bash
# Install what the benchmarks need on a fresh machine, then run all of them:
# one table, the issue's targets, and benchmarks/results/latest.{json,md,png}.
# Arguments go to benchmarks/run.py (--quick, --out DIR, --only STEPS).
set -euo pipefail
cd "$(dirname "$0")/.."
# The servers the benchmarks start on loopback (never a system service), and
# openssl, which the shared server helpers use for their TLS certificates.
missing=""
command -v redis-server >/dev/null || missing="$missing redis-server"
command -v rabbitmq-server >/dev/null || missing="$missing rabbitmq-server"
command -v openssl >/dev/null || missing="$missing openssl"
if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
# Compiles the Cython hot path in place and installs Celery and matplotlib.
python3 -m pip install -q -e '.[bench]' 2>&1 | { grep -v -e '^WARNING' -e 'notice' >&2 || true; }
exec python3 benchmarks/run.py "$@"

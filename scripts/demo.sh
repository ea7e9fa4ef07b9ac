#!/usr/bin/env bash
# Install corekit, start a worker on the embedded SQLite broker, send it tasks,
# print the results, stop the worker warmly.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python3 -m pip install -q -e "$here" 2>&1 | { grep -v -e '^WARNING' -e 'notice' >&2 || true; }
workdir="$(mktemp -d)"
cp "$here"/examples/demo/*.py "$workdir"/
cd "$workdir"
echo "== corekit demo in $workdir (broker and results: sqlite://corekit.sqlite3)"
corekit -A demo_tasks worker -l info -c 4 --pool threads > worker.log 2>&1 &
worker=$!
trap 'kill -TERM $worker 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "ready\." worker.log && break; sleep 0.1; done
sed -n '1,/ready\./p' worker.log | sed 's/^/worker| /'
status=0
python3 run_demo.py || status=$?
kill -TERM $worker
wait $worker || true
trap - EXIT
echo "== worker log (last lines)"
tail -n 4 worker.log | sed 's/^/worker| /'
exit $status

#!/usr/bin/env bash
# run-demo.sh MYNA PUBLIC ADMIN - `make run`: starts Myna in the foreground
# with the demo instance of examples/demo-instances.json and data in ./var.
set -euo pipefail
myna=$1 public=$2 admin=$3
root=$(cd "$(dirname "$0")/.." && pwd)
cat <<MSG

Myna is starting with the demo instance 'demo' (data in ./var, Ctrl-C stops it).

  Meta's verification handshake:
    curl '${public/#/http://}/webhook/demo?hub.mode=subscribe&hub.challenge=42&hub.verify_token=demo-verify-token'
  A signed inbound message, as Meta sends it:
    scripts/send-webhook.sh tests/data/cloud/cloud-text.json
  What was stored, and what the demo bot answered from its FAQ:
    sqlite3 var/instances/demo.db 'SELECT seq, type, contact, text FROM inbox'
    sqlite3 var/instances/demo.bot.db 'SELECT role, text FROM history'
  (the demo has no real Graph API: its sends are retried in the log)
  Metrics:
    curl http://$admin/metrics

MSG
exec "$myna" serve --public "$public" --admin "$admin" --data ./var \
    --instances "$root/examples/demo-instances.json"

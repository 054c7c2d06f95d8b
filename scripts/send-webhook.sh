#!/usr/bin/env bash
# send-webhook.sh FILE [INSTANCE] [APP_SECRET] [BASE_URL]
# Posts a Cloud API webhook body to Myna the way Meta does: the exact bytes of
# FILE, signed with X-Hub-Signature-256 (HMAC-SHA256 keyed with the app
# secret). Defaults fit `make run`'s demo instance.
set -euo pipefail
file=${1:?usage: $0 FILE [INSTANCE] [APP_SECRET] [BASE_URL]}
instance=${2:-demo}
secret=${3:-demo-app-secret-change-me}
base=${4:-http://127.0.0.1:8080}
sig=$(openssl dgst -sha256 -hmac "$secret" -hex <"$file" | sed 's/^.*= //')
curl -sS -w ' (HTTP %{http_code})\n' -X POST \
    -H 'Content-Type: application/json' \
    -H "X-Hub-Signature-256: sha256=$sig" \
    --data-binary "@$file" "$base/webhook/$instance"

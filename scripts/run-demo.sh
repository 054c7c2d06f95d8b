#!/usr/bin/env bash
# run-demo.sh MYNA PUBLIC ADMIN - `make run`: starts Myna in the foreground
# with the demo instance of examples/demo-instances.json (provider "sim",
# the built-in simulator) and data in ./var. With MYNA_LLM_URL set (an
# OpenAI-compatible base URL, with MYNA_LLM_MODEL; MYNA_LLM_API_KEY optional)
# the demo bot answers with that model instead of its FAQ.
set -euo pipefail
myna=$1 public=$2 admin=$3
root=$(cd "$(dirname "$0")/.." && pwd)
instances=$root/examples/demo-instances.json
brain="its FAQ (the built-in answerer)"

json_escape() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }
# for the replacement of sed's s|||: there \, & (the matched text) and | are its own
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

if [ -n "${MYNA_LLM_URL:-}" ]; then
    mkdir -p ./var
    llm="\"llm\": {\"url\": \"$(json_escape "$MYNA_LLM_URL")\", \"model\": \"$(json_escape "${MYNA_LLM_MODEL:-default}")\", \"api_key\": \"$(json_escape "${MYNA_LLM_API_KEY:-}")\", \"system_prompt\": \"You are the friendly assistant of a barbershop. Answer briefly.\"},"
    # the file holds the API key: readable by its owner only (made anew)
    rm -f ./var/demo-instances.json
    (umask 077 && sed "s|\"provider\": \"sim\",|\"provider\": \"sim\", $(sed_escape "$llm")|" "$instances" > ./var/demo-instances.json)
    instances=./var/demo-instances.json
    brain="the model at $MYNA_LLM_URL"
fi

cat <<MSG

Myna is starting with the demo bot 'demo' on the built-in simulator; it
answers from $brain. Data in ./var, Ctrl-C stops it.

  Chat with it in a browser:   http://$admin/sim/demo
  or in a terminal:            $myna chat demo --admin $admin
  Metrics:                     curl http://$admin/metrics
  What was stored:             sqlite3 var/instances/demo.db 'SELECT seq, type, contact, text FROM messages'

MSG
exec "$myna" serve --public "$public" --admin "$admin" --data ./var --instances "$instances"

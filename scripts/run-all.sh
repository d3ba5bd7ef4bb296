#!/usr/bin/env bash
# `make run`: the broadcaster, the chat app and its UI on embedded defaults (SQLite, in-process
# hub, the offline demo model unless ANTHROPIC_API_KEY is set). Ctrl+C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export REVERB_APP_ID="${REVERB_APP_ID:-local-app}"
export REVERB_APP_KEY="${REVERB_APP_KEY:-local-key}"
export REVERB_APP_SECRET="${REVERB_APP_SECRET:-local-secret-change-me}"
export REVERB_HOST="${REVERB_HOST:-127.0.0.1}"
export REVERB_PORT="${REVERB_PORT:-8080}"
export REVERB_SCHEME="${REVERB_SCHEME:-http}"
APP_PORT="${APP_PORT:-8000}"
mkdir -p var
export DATABASE_URL="${DATABASE_URL:-sqlite:///var/chat.sqlite3}"
export APP_SEED_DEMO="${APP_SEED_DEMO:-1}"  # the demo account is for local runs only

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null; }
trap cleanup EXIT INT TERM

.venv/bin/python -m broadcaster serve --host 127.0.0.1 --port "$REVERB_PORT" &
pids+=($!)
.venv/bin/python -m app serve --host 127.0.0.1 --port "$APP_PORT" &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$APP_PORT/api/config" >/dev/null 2>&1 \
     && curl -fsS "http://127.0.0.1:$REVERB_PORT/up" >/dev/null 2>&1; then
    break
  fi
  sleep 0.2
done
cat <<MSG

  Chat UI:      http://127.0.0.1:$APP_PORT/   (demo user: demo@example.com / demo-password)
  Broadcaster:  ws://127.0.0.1:$REVERB_PORT/app/$REVERB_APP_KEY   (HTTP API on the same port)
  Model:        ${ANTHROPIC_API_KEY:+Claude (ANTHROPIC_API_KEY is set)}${ANTHROPIC_API_KEY:-offline demo model (set ANTHROPIC_API_KEY for Claude)}
  Press Ctrl+C to stop.

MSG
wait -n "${pids[@]}"

#!/usr/bin/env bash
# `make rehearse`: an integration's whole flow in test mode, the way a CI job would run it —
# ingest a customer, drive it to VERIFIED + CLEAR with the test helpers, and poll with
# `updated_since` until the change is seen. Exits non-zero, saying why, on any deviation.
#
# With IC_API_URL and IC_TEST_KEY set it rehearses against that API (a deployed stack, or a
# running `make run`) with that key, which must be a test key (ic_test_…: it touches the
# org's test data only). Without them it starts the local stack on free ports and issues a
# test key with icadmin. Needs bash, curl and python3 (for reading JSON).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${CARGO_TARGET_DIR:-target}/debug"
POLL_SECONDS="${REHEARSE_POLL_SECONDS:-60}"

say() { echo "rehearse: $*"; }
fail() { echo "rehearse: FAILED: $*" >&2; exit 1; }
# field EXPR < json: a Python expression over `d`, the parsed document.
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

work=$(mktemp -d)
stack=""
cleanup() {
  if [ -n "$stack" ]; then kill -TERM "$stack" 2>/dev/null || true; wait "$stack" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${IC_API_URL:-}" ] || [ -z "${IC_TEST_KEY:-}" ]; then
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  PORT=$(free_port); DYNAMODB_PORT=$(free_port); COGNITO_PORT=$(free_port)
  say "starting the local stack on 127.0.0.1:$PORT"
  RUST_LOG=warn PORT=$PORT DYNAMODB_PORT=$DYNAMODB_PORT COGNITO_PORT=$COGNITO_PORT \
    "$BIN/local-stack" >"$work/stack.out" 2>"$work/stack.err" &
  stack=$!
  for _ in $(seq 1 240); do
    grep -q '^Listening on' "$work/stack.out" && break
    kill -0 "$stack" 2>/dev/null || { cat "$work/stack.err" >&2; fail "the local stack did not start"; }
    sleep 0.5
  done
  grep -q '^Listening on' "$work/stack.out" || fail "the local stack did not start in time"
  IC_API_URL="http://127.0.0.1:$PORT"
  IC_TEST_KEY=$(set -a; . ".local/env.$PORT"; set +a
    "$BIN/icadmin" keys create --org demo --label "CI rehearsal" --mode test \
      --scope customers:write --scope customers:read --scope aml:read | field 'd["key"]')
fi
API="${IC_API_URL%/}"

# call METHOD PATH [JSON] [IDEMPOTENCY-KEY]: the body goes to $work/body, headers to
# $work/headers; prints the status.
call() {
  local args=(-sS -o "$work/body" -D "$work/headers" -w '%{http_code}' -X "$1" "$API$2"
              -H "Authorization: Bearer $IC_TEST_KEY" -H "User-Agent: ic-rehearse")
  if [ -n "${3:-}" ]; then args+=(-H "Content-Type: application/json" --data "$3"); fi
  if [ -n "${4:-}" ]; then args+=(-H "Idempotency-Key: $4"); fi
  curl "${args[@]}" || fail "$1 $2: no answer from $API"
}
expect() { # STATUS WHAT: the last call answered STATUS, or the rehearsal stops
  [ "$status" = "$1" ] || fail "$2: expected $1, got $status: $(cat "$work/body")"
}

status=$(call GET /v1/me); expect 200 "GET /v1/me (the key is valid)"
mode=$(field 'd["mode"]' <"$work/body")
[ "$mode" = "test" ] || fail "the key is a $mode key; a rehearsal takes a test key (ic_test_…) only"
say "key $(field 'd["prefix"]' <"$work/body")… is a test key of org $(field 'd["org"]["id"]' <"$work/body")"

external_id="rehearsal-$(python3 -c 'import uuid; print(uuid.uuid4().hex[:12])')"
idempotency=$(python3 -c 'import uuid; print(uuid.uuid4())')
customer="{\"external_id\": \"$external_id\", \"full_name\": \"Rehearsal Customer\", \"email\": \"rehearsal@example.com\"}"
status=$(call POST /v1/customers "$customer" "$idempotency"); expect 201 "ingest the customer"
id=$(field 'd["id"]' <"$work/body")
watermark=$(field 'd["updated_at"]' <"$work/body")
say "ingested $external_id as $id"
status=$(call POST /v1/customers "$customer" "$idempotency"); expect 201 "repeat the ingest with its Idempotency-Key"
grep -qi '^idempotent-replayed: true' "$work/headers" || fail "the repeated ingest was not a replay"

for step in "kyc IN_PROGRESS" "kyc VERIFIED" "aml PENDING" "aml CLEAR"; do
  set -- $step
  status=$(call POST "/v1/test_helpers/customers/$id/$1" "{\"status\": \"$2\"}")
  expect 200 "move $1 to $2"
  say "moved $1 to $2"
done

# Poll as an integration does: everything changed since the last updated_at it saw.
deadline=$(( $(date +%s) + POLL_SECONDS ))
while :; do
  status=$(call GET "/v1/customers?updated_since=$watermark"); expect 200 "poll with updated_since"
  seen=$(field "next((c['kyc_status'] + ' ' + c['aml']['status'] for c in d['data'] if c['id'] == '$id'), '')" <"$work/body")
  if [ "$seen" = "VERIFIED CLEAR" ]; then
    say "the poll sees $id VERIFIED + CLEAR: the integration is rehearsed"
    exit 0
  fi
  [ "$(date +%s)" -lt "$deadline" ] || fail "the poll never saw $id VERIFIED + CLEAR (last: '${seen:-not listed}')"
  sleep 1
done

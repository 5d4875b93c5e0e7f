#!/usr/bin/env bash
# `make contract`: start the local stack on free ports, issue nothing by hand (it prints a
# demo key with every scope and the password of admin@demo.test), and let schemathesis
# check the API against openapi.yaml: the integration API with the key, the member API
# with the administrator's access token (signed in through the Cognito emulator), and the
# test helpers with a test key from icadmin (with POST /v1/customers, whose links hand
# them the new customers' ids); then each plane with no credential, with the other
# plane's credential and with a malformed one, every 401 checked against the spec too.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${SCHEMATHESIS:=.venv-contract/bin/schemathesis}"
# The binaries make contract just built (cargo honours CARGO_TARGET_DIR).
BIN="${CARGO_TARGET_DIR:-target}/debug"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
DYNAMODB_PORT=$(free_port)
COGNITO_PORT=$(free_port)
out=$(mktemp)
RUST_LOG=warn PORT=$PORT DYNAMODB_PORT=$DYNAMODB_PORT COGNITO_PORT=$COGNITO_PORT "$BIN/local-stack" >"$out" 2>"$out.err" &
stack=$!
trap 'kill -TERM $stack 2>/dev/null; wait $stack 2>/dev/null; rm -f "$out" "$out.err"' EXIT

for _ in $(seq 1 240); do
  grep -q '^Listening on' "$out" && break
  kill -0 $stack 2>/dev/null || { cat "$out.err" >&2; echo "local stack failed to start" >&2; exit 1; }
  sleep 0.5
done
grep -q '^Listening on' "$out" || { echo "local stack did not start in time" >&2; exit 1; }
KEY=$(grep -o 'ic_live_[0-9A-Za-z]*' "$out" | head -1)
PASSWORD=$(sed -n '/password (this stack only)/{n;p}' "$out" | tr -d ' ')
TOKEN=$(set -a; . ".local/env.$PORT"; set +a
        "$BIN/icadmin" members login --email admin@demo.test --password "$PASSWORD" --token-only)
TEST_KEY=$(set -a; . ".local/env.$PORT"; set +a
           "$BIN/icadmin" keys create --org demo --label contract --mode test \
             --scope customers:write --scope customers:read --scope aml:read |
           python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

# The config allows the few answers that depend on server state (see the file).
# schemathesis keeps its example database under the working directory: use a scratch one.
work=$(mktemp -d)
trap 'kill -TERM $stack 2>/dev/null; wait $stack 2>/dev/null; rm -rf "$out" "$out.err" "$work"' EXIT
spec="$PWD/openapi.yaml"
config="$PWD/infra/tools/schemathesis.toml"
cd "$work"
check() { # credential ("" for none), path regex, further schemathesis options
  local auth=()
  [ -n "$1" ] && auth=(--header "Authorization: Bearer $1")
  local paths=$2
  shift 2
  "$SCHEMATHESIS" --config-file "$config" run "$spec" \
    --url "http://127.0.0.1:$PORT" \
    "${auth[@]}" \
    --include-path-regex "$paths" \
    --checks all \
    --max-examples "${CONTRACT_MAX_EXAMPLES:-50}" \
    --seed "${CONTRACT_SEED:-20261122}" \
    --no-color "$@"
}
INTEGRATION='^/v1/(customers|me|webhook_endpoints)'
MEMBER='^/v1/org/'
echo "== The integration API, with an API key"
check "$KEY" "$INTEGRATION"
echo "== The member API, with a member's access token"
check "$TOKEN" "$MEMBER"
echo "== Test mode: the test helpers, with a test key (its customers made first, linked)"
check "$TEST_KEY" '^/v1/(customers$|test_helpers/)'
# Every wrong caller gets its 401 as the spec says it (the header's form on each plane):
# none, the other plane's credential, and a malformed one. Bodies are generated as in the
# runs above, but only the 401 matters here, so hypothesis' "too many examples filtered"
# health check (a generation matter, which it raised at random on the provider-keys body)
# does not stop these runs.
echo "== GitHub's secret-scanning endpoint, unsigned (schemathesis cannot sign as GitHub)"
check "" '^/v1/secret-scanning/' --suppress-health-check=filter_too_much --phases=examples,coverage,fuzzing
for plane in integration member; do
  if [ "$plane" = integration ]; then paths=$INTEGRATION; other=$TOKEN; else paths=$MEMBER; other=$KEY; fi
  echo "== The $plane API, with no credential"
  check "" "$paths" --suppress-health-check=filter_too_much
  echo "== The $plane API, with the other plane's credential"
  check "$other" "$paths" --suppress-health-check=filter_too_much
  echo "== The $plane API, with a malformed credential"
  check "not-a-credential" "$paths" --suppress-health-check=filter_too_much
done

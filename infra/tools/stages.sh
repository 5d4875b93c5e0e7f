#!/usr/bin/env bash
# Runs commands one after another as timed stages: `stages.sh CMD ARGS… -- CMD ARGS… …`.
# Stops at the first that fails; prints every stage's time and the total either way; fails
# when the total passes CI_BUDGET_SECS (default 3600: a warning line well before CI's
# 90-minute limit, not after it). .ci/run uses it; a test holds its budget check.
set -uo pipefail

budget=${CI_BUDGET_SECS:-3600}
names=()
secs=()
status=0
started=$(date +%s)

fmt() { printf '%dm %02ds' $(($1 / 60)) $(($1 % 60)); }

report() {
  local total=$(($(date +%s) - started)) i
  echo
  echo "== stages =="
  for i in "${!names[@]}"; do
    printf '  %-20s %s\n' "${names[$i]}" "$(fmt "${secs[$i]}")"
  done
  printf '  %-20s %s (budget %s)\n' total "$(fmt "$total")" "$(fmt "$budget")"
  if [ "$status" -eq 0 ] && [ "$total" -gt "$budget" ]; then
    echo "stages: the total $(fmt "$total") passed the budget of $(fmt "$budget") (CI_BUDGET_SECS): make the suite faster before it reaches CI's limit" >&2
    status=1
  fi
  return "$status"
}

run_stage() {
  local name="$*" began=$(date +%s)
  echo "== $name =="
  "$@"
  status=$?
  names+=("$name")
  secs+=($(($(date +%s) - began)))
  if [ "$status" -ne 0 ]; then
    echo "stages: '$name' failed (exit $status)" >&2
  fi
}

stage=()
for arg in "$@" --; do
  if [ "$arg" = -- ]; then
    if [ "${#stage[@]}" -gt 0 ] && [ "$status" -eq 0 ]; then
      run_stage "${stage[@]}"
    fi
    stage=()
  else
    stage+=("$arg")
  fi
done
report
exit $?

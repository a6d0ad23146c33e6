#!/bin/bash
# soak.sh - run a few thousand succeeding, failing and cancelled queries in
# one backend and check that its memory does not grow.
#
# Used by sql/soak.sql.  Needs PGHOST/PGPORT/PGUSER of the test cluster and
# VAPI_MOCK_URL of the mock (set by scripts/test.sh), and the regression
# database with the phone_numbers foreign table.  Prints a summary with
# counts of each outcome and whether the backend's resident memory grew by
# less than the bound between the end of the warm-up and the end.
set -euo pipefail

ITERATIONS=${1:-600}
WARMUP=100
BOUND_KB=${SOAK_BOUND_KB:-4096}
here=$(cd "$(dirname "$0")" && pwd)
mockctl="python3 $here/mockctl.py"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

OK_ID=$($mockctl dump | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[0])["id"])')
ERR_ID=00000000-0000-4000-8000-00000000e500
BAD_ID=00000000-0000-4000-8000-00000000bad0
STALL_ID=00000000-0000-4000-8000-00000000057a

$mockctl faults-clear
$mockctl fault "[{\"match\":\"GET /phone-number/$ERR_ID\",\"kind\":\"status\",\"status\":400,\"times\":0},
                 {\"match\":\"GET /phone-number/$BAD_ID\",\"kind\":\"malformed\",\"times\":0},
                 {\"match\":\"GET /phone-number/$STALL_ID\",\"kind\":\"stall\",\"ms\":2000,\"times\":0}]"

{
	echo "CREATE FUNCTION pg_temp.rss_kb() RETURNS int LANGUAGE sql AS \$\$ SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\\s+(\\d+)'))[1]::int \$\$;"
	for i in $(seq 1 "$ITERATIONS"); do
		echo "SELECT 'ok:' || count(*) FROM phone_numbers WHERE id = '$OK_ID';"
		echo "SELECT 'list:' || count(*) FROM phone_numbers WHERE created_at > '2024-04-01';"
		echo "SELECT count(*) FROM phone_numbers WHERE id = '$ERR_ID';"
		echo "SELECT count(*) FROM phone_numbers WHERE id = '$BAD_ID';"
		echo "SET statement_timeout = '20ms';"
		echo "SELECT count(*) FROM phone_numbers WHERE id = '$STALL_ID';"
		echo "RESET statement_timeout;"
		if [ "$i" = "$WARMUP" ]; then
			echo "SELECT 'rss-start:' || pg_temp.rss_kb();"
		fi
	done
	echo "SELECT 'rss-end:' || pg_temp.rss_kb();"
} | psql -X -q -t -A -d "${PGDATABASE:-contrib_regression}" > "$out" 2>&1 || true

$mockctl faults-clear

ok=$(grep -c '^ok:1$' "$out" || true)
list=$(grep -c '^list:' "$out" || true)
failed=$(grep -c 'ERROR:  Vapi API' "$out" || true)
cancelled=$(grep -c 'canceling statement due to statement timeout' "$out" || true)
other=$(grep -c 'ERROR' "$out" || true)
other=$((other - failed - cancelled))
start=$(sed -n 's/^rss-start://p' "$out")
end=$(sed -n 's/^rss-end://p' "$out")
echo "queries: $((ITERATIONS * 5)), succeeded: $((ok + list)), failed: $failed, cancelled: $cancelled, other errors: $other"
if [ -n "$start" ] && [ -n "$end" ] && [ $((end - start)) -lt "$BOUND_KB" ]; then
	echo "memory growth after warm-up is under $BOUND_KB kB"
else
	echo "memory grew from ${start:-?} kB to ${end:-?} kB"
fi
[ -z "${SOAK_VERBOSE:-}" ] || echo "rss: $start kB -> $end kB (growth $((end - start)) kB)" >&2

#!/bin/bash
# concurrency.sh - twenty backends scanning and writing at once while the
# mock adds latency and answers some requests with 429 or 503.
#
# Used by sql/concurrency.sql, with the environment of scripts/test.sh.
# Every statement of every session must end in the right result or a clean
# ERROR (rate limit, remote error); prints a summary of wrong results and
# unexpected errors (both must be 0) and whether every session finished.
set -euo pipefail

SESSIONS=${1:-20}
ROUNDS=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
mockctl="python3 $here/mockctl.py"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
db=${PGDATABASE:-contrib_regression}

baseline=$(psql -X -q -t -A -d "$db" -c "SELECT count(*) FROM phone_numbers WHERE name LIKE 'Line %'")

$mockctl faults-clear
# the first rule that applies wins: the status rules come first, and the
# requests they let through get the latency
$mockctl fault '[{"match":"GET /v2/phone-number","kind":"status","status":429,"retry_after":"0","every":5,"times":0},
                 {"match":"PATCH /phone-number","kind":"status","status":503,"every":4,"times":0},
                 {"match":"POST /phone-number","kind":"status","status":429,"every":6,"times":0},
                 {"match":"*","kind":"latency","ms":20,"times":0}]'

for s in $(seq 1 "$SESSIONS"); do
	psql -X -q -d "$db" > "$dir/session.$s" 2>&1 <<SQL &
SET client_min_messages = notice;
DO \$\$
DECLARE
  my_id uuid;
  n bigint;
  r text;
BEGIN
  FOR round IN 1..$ROUNDS LOOP
    BEGIN
      SELECT count(*) INTO n FROM phone_numbers WHERE name LIKE 'Line %';
      IF n = $baseline THEN RAISE NOTICE 'RESULT ok scan';
      ELSE RAISE NOTICE 'RESULT wrong scan: % rows, expected $baseline', n; END IF;
    EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'ERRORED % %', SQLSTATE, SQLERRM;
    END;
    BEGIN
      INSERT INTO phone_numbers (provider, number, credential_id, name)
        VALUES ('telnyx', '+1312' || lpad(($s * 100 + round)::text, 7, '0'), 'c', 'w$s-' || round)
        RETURNING id INTO my_id;
      UPDATE phone_numbers SET name = 'w$s-' || round || '-upd' WHERE id = my_id RETURNING name INTO r;
      IF r = 'w$s-' || round || '-upd' THEN RAISE NOTICE 'RESULT ok update';
      ELSE RAISE NOTICE 'RESULT wrong update: %', r; END IF;
      SELECT name INTO r FROM phone_numbers WHERE id = my_id;
      IF r = 'w$s-' || round || '-upd' THEN RAISE NOTICE 'RESULT ok lookup';
      ELSE RAISE NOTICE 'RESULT wrong lookup: %', r; END IF;
      DELETE FROM phone_numbers WHERE id = my_id;
      RAISE NOTICE 'RESULT ok delete';
    EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'ERRORED % %', SQLSTATE, SQLERRM;
    END;
  END LOOP;
  RAISE NOTICE 'SESSION DONE';
END \$\$;
SQL
done
wait

$mockctl faults-clear
# what the sessions left behind when a write failed half-way
psql -X -q -t -A -d "$db" -c "DELETE FROM phone_numbers WHERE name LIKE 'w%'" >/dev/null

cat "$dir"/session.* > "$dir/all"
done_sessions=$(grep -c 'SESSION DONE' "$dir/all" || true)
ok=$(grep -c 'RESULT ok' "$dir/all" || true)
wrong=$(grep -c 'RESULT wrong' "$dir/all" || true)
clean=$(grep -E 'ERRORED (53400|HV000|HV00N|HV004) ' "$dir/all" | grep -c 'Vapi' || true)
errored=$(grep -c 'ERRORED' "$dir/all" || true)
crashed=$(grep -ciE 'server closed the connection|terminated abnormally|connection to server' "$dir/all" || true)
echo "sessions finished: $done_sessions of $SESSIONS"
echo "wrong results: $wrong, unexpected errors: $((errored - clean)), crashes: $crashed"
[ "$ok" -gt 0 ] && echo "some statements succeeded" || echo "no statement succeeded"
[ -z "${CONCURRENCY_VERBOSE:-}" ] || { echo "ok=$ok clean_errors=$clean" >&2; grep -E 'wrong|ERRORED' "$dir/all" | sort | uniq -c >&2; }

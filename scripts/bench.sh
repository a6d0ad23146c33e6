#!/bin/bash
# bench.sh - measure vapi_fdw's scan side by side with its alternatives.
#
# Starts a throwaway cluster and the local mock (which serves pre-built
# pages) and, in one run, for organisations of 10,000 and 100,000 numbers:
#   - full-scan throughput of vapi_fdw for count(*), every column, id+number;
#   - the same queries on a local heap copy (CREATE TABLE AS);
#   - the same JSON bytes parsed in the database with jsonb_to_recordset
#     (no network): the practical limit;
#   - the do-it-yourself path: curl through COPY ... FROM PROGRAM, then
#     jsonb_to_recordset;
# and, on 10,000 numbers, a full scan with 50 ms of latency per request,
# 100 small queries in one session (and the TCP connections they opened),
# and the backend's peak memory during the 100,000-number scan.  Then, with
# 50 ms of latency per request, round trips against the way they were paid
# one at a time (schema seq: max_concurrent_requests 1, count_pushdown
# off): count(*) of 10,000 and 100,000 numbers, id IN lists of 50 and 500
# ids, and a 20-page scan, unordered and ordered by created_at.  Last, the
# cost of the statistics: the 100,000-number scan with vapi_fdw.track_stats
# on (counted in shared memory: the cluster preloads vapi_fdw) against the
# same scan with it off, in alternation; and the request rate the mock
# sees while four sessions scan at once, with a rate budget of 20 requests
# per second (burst 5) and without one.  Ratios are against baselines
# measured in the same run.
#
# Usage: scripts/bench.sh [repetitions]     (default 5; best time is used)

source "$(dirname "$0")/lib.sh"

REPS=${1:-5}
vapi_prepare curl bc
vapi_start_mock --count 10000 --seed 1
vapi_start_cluster "shared_buffers = 256MB" "work_mem = 64MB" "shared_preload_libraries = 'vapi_fdw'"
vapi_setup_foreign_table
mockctl="python3 $VAPI_ROOT/test/mockctl.py"

# schema seq: the same table, one request at a time, count(*) by reading
# every row (how every query paid its round trips before)
vapi_psql <<'SQL'
\getenv url VAPI_MOCK_URL
\getenv key VAPI_MOCK_KEY
CREATE SERVER seq FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'url', max_concurrent_requests '1', count_pushdown 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER seq OPTIONS (api_key :'key');
CREATE SCHEMA seq;
IMPORT FOREIGN SCHEMA vapi FROM SERVER seq INTO seq;
SQL

vapi_psql <<'SQL'
CREATE TABLE diy_raw (body text);
CREATE TABLE results (label text, n int, rows bigint, best_ms numeric, ord serial);

-- best of "reps" runs of a query that returns one bigint
CREATE FUNCTION bench(label text, n int, q text, reps int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  best numeric := NULL;
  ms numeric;
  r bigint;
BEGIN
  FOR i IN 1..reps LOOP
    t0 := clock_timestamp();
    EXECUTE q INTO r;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    best := least(coalesce(best, ms), ms);
  END LOOP;
  INSERT INTO results (label, n, rows, best_ms) VALUES (label, n, r, round(best, 1));
END $$;

-- the do-it-yourself path: curl every page, then expand the JSON
CREATE FUNCTION diy_fetch(url text, key text, pages int) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE diy_raw;
  EXECUTE format($f$COPY diy_raw FROM PROGRAM %L WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')$f$,
                 format('for p in $(seq 1 %s); do curl -s --compressed -H "Authorization: Bearer %s" "%s/v2/phone-number?limit=1000&page=$p"; echo; done',
                        pages, key, url));
  RETURN (SELECT count(*) FROM diy_raw);
END $$;

-- fetch with curl, then run the expansion query "q" over the pages
CREATE FUNCTION diy_run(url text, key text, pages int, q text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  r bigint;
BEGIN
  PERFORM diy_fetch(url, key, pages);
  EXECUTE q INTO r;
  RETURN r;
END $$;
SQL

# the columns of phone_numbers, for jsonb_to_recordset
COLS="id uuid, \"orgId\" text, provider text, number text, name text, status text, \"assistantId\" text, \"squadId\" text, \"workflowId\" text, \"credentialId\" text, \"numberE164CheckEnabled\" boolean, \"smsEnabled\" boolean, \"twilioAccountSid\" text, \"twilioAuthToken\" text, \"twilioApiKey\" text, \"twilioApiSecret\" text, \"numberDesiredAreaCode\" text, \"sipUri\" text, authentication jsonb, server jsonb, \"fallbackDestination\" jsonb, hooks jsonb, \"createdAt\" timestamptz, \"updatedAt\" timestamptz"

for N in 10000 100000; do
	log "organisation of $N numbers"
	$mockctl reset --count "$N" --seed 1
	pages=$(( (N + 999) / 1000 ))
	# the mock's URL and key come from the environment, not the command line
	vapi_psql -v n="$N" -v reps="$REPS" -v pages="$pages" -v cols="$COLS" <<'SQL'
\getenv url VAPI_MOCK_URL
\getenv key VAPI_MOCK_KEY
\o /dev/null
DROP TABLE IF EXISTS heap_copy;
CREATE TABLE heap_copy AS SELECT * FROM phone_numbers;
VACUUM ANALYZE heap_copy;
SELECT diy_fetch(:'url', :'key', :pages) AS pages_fetched \gset
SELECT bench('fdw: count(*)', :n, 'SELECT count(*) FROM seq.phone_numbers', :reps);
SELECT bench('fdw: every column', :n, 'SELECT count(*) FROM (SELECT * FROM seq.phone_numbers OFFSET 0) s', :reps);
SELECT bench('fdw: id, number', :n, 'SELECT count(*) FROM (SELECT id, number FROM seq.phone_numbers OFFSET 0) s', :reps);
SELECT bench('heap: count(*)', :n, 'SELECT count(*) FROM heap_copy', :reps);
SELECT bench('heap: every column', :n, 'SELECT count(*) FROM (SELECT * FROM heap_copy OFFSET 0) s', :reps);
SELECT bench('heap: id, number', :n, 'SELECT count(*) FROM (SELECT id, number FROM heap_copy OFFSET 0) s', :reps);
SELECT bench('jsonb_to_recordset: count(*)', :n, 'SELECT sum(jsonb_array_length(body::jsonb->''results'')) FROM diy_raw', :reps);
SELECT bench('jsonb_to_recordset: every column', :n, format('SELECT count(*) FROM (SELECT x.*, e AS attrs FROM diy_raw, jsonb_array_elements(body::jsonb->''results'') e, jsonb_to_record(e) AS x(%s) OFFSET 0) s', :'cols'), :reps);
SELECT bench('jsonb_to_recordset: id, number', :n, 'SELECT count(*) FROM (SELECT x.id, x.number FROM diy_raw, jsonb_to_recordset(body::jsonb->''results'') AS x(id uuid, number text) OFFSET 0) s', :reps);
SELECT bench('curl + jsonb_to_recordset: every column', :n, format('SELECT diy_run(%L, %L, %s, %L)', :'url', :'key', :pages, format('SELECT count(*) FROM (SELECT x.*, e AS attrs FROM diy_raw, jsonb_array_elements(body::jsonb->''results'') e, jsonb_to_record(e) AS x(%s) OFFSET 0) s', :'cols')), :reps);
SELECT bench('curl + jsonb_to_recordset: id, number', :n, format('SELECT diy_run(%L, %L, %s, %L)', :'url', :'key', :pages, 'SELECT count(*) FROM (SELECT x.id, x.number FROM diy_raw, jsonb_to_recordset(body::jsonb->''results'') AS x(id uuid, number text) OFFSET 0) s'), :reps);
SQL
done

# 10,000 numbers again for latency, small queries and memory
$mockctl reset --count 10000 --seed 1
log "latency: 50 ms per request"
$mockctl fault '[{"match":"GET /v2/phone-number","kind":"latency","ms":50,"times":0}]'
vapi_psql -v reps="$REPS" <<'SQL'
\o /dev/null
SELECT bench('fdw with 50 ms latency: count(*)', 10000, 'SELECT count(*) FROM seq.phone_numbers', :reps);
SQL
$mockctl faults-clear

log "100 small queries in one session"
vapi_psql <<'SQL'
CREATE TABLE small_ids AS SELECT id FROM phone_numbers ORDER BY created_at LIMIT 50;
SQL
$mockctl clear
vapi_psql <<'SQL'
DO $$
DECLARE
  t0 timestamptz := clock_timestamp();
  r bigint;
  i uuid;
BEGIN
  FOR i IN SELECT id FROM small_ids LOOP
    EXECUTE 'SELECT count(*) FROM phone_numbers WHERE id = $1' INTO r USING i;
    EXECUTE 'SELECT count(*) FROM (SELECT id FROM phone_numbers ORDER BY created_at DESC LIMIT 10) s' INTO r;
  END LOOP;
  INSERT INTO results (label, n, rows, best_ms)
    VALUES ('100 small queries (id = ..., ORDER BY created_at DESC LIMIT 10), per query', 10000, 100,
            round((extract(epoch FROM clock_timestamp() - t0) * 1000 / 100)::numeric, 2));
END $$;
SQL
# the distinct TCP connections the mock saw those requests on
small_requests=$($mockctl count)
small_conns=$($mockctl requests --conn | sed 's/^conn=\([0-9]*\) .*/\1/' | sort -u | wc -l)

log "peak memory of a 100,000-number scan"
$mockctl reset --count 100000 --seed 1
mem=$(vapi_psql -tA <<'SQL'
CREATE FUNCTION pg_temp.hwm() RETURNS int LANGUAGE sql AS $$ SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::int $$;
SELECT pg_temp.hwm() AS idle \gset
SELECT count(*) FROM (SELECT * FROM phone_numbers OFFSET 0) s \gset
SELECT :idle || ' ' || pg_temp.hwm();
SQL
)

# round trips, with 50 ms of latency per API request
# trip LABEL N SQL: best of $REPS (bench()), then the requests of one run
# and the most that were in flight at once
vapi_psql -c "CREATE TABLE trips (label text, n int, requests int, inflight int)"
trip() {
	vapi_psql -v label="$1" -v n="$2" -v q="$3" -v reps="$REPS" <<'SQL'
\o /dev/null
SELECT bench(:'label', :n, :'q', :reps);
SQL
	$mockctl clear
	vapi_psql -c "$3" >/dev/null
	local requests inflight
	requests=$($mockctl count)
	inflight=$($mockctl overlap | sed 's/max_inflight=//')
	vapi_psql -v label="$1" -v n="$2" -v r="$requests" -v i="$inflight" <<'SQL'
INSERT INTO trips VALUES (:'label', :n, :r, :i);
SQL
}
for N in 10000 100000; do
	log "round trips: count(*) of $N numbers"
	$mockctl reset --count "$N" --seed 1
	$mockctl fault '[{"match":"GET /","kind":"latency","ms":50,"times":0}]'
	trip "rt: count(*), every page, 1 at a time" "$N" "SELECT count(*) FROM seq.phone_numbers"
	trip "rt: count(*), metadata.totalItems" "$N" "SELECT count(*) FROM phone_numbers"
	trip "rt: count(*) of a time range, metadata.totalItems" "$N" \
		"SELECT count(*) FROM phone_numbers WHERE created_at >= '2024-02-01' AND created_at < '2024-03-01'"
	$mockctl faults-clear
done

log "round trips: lookups and a 20-page scan"
$mockctl reset --count 20000 --seed 1
vapi_psql -c "CREATE TABLE bench_ids AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM seq.phone_numbers"
$mockctl fault '[{"match":"GET /","kind":"latency","ms":50,"times":0}]'
for K in 50 500; do
	ids="SELECT id FROM bench_ids WHERE n <= $K"
	trip "rt: id IN ($K ids), 1 at a time" "$K" \
		"SELECT count(*) FROM seq.phone_numbers WHERE id = ANY(ARRAY($ids))"
	trip "rt: id IN ($K ids), concurrent" "$K" \
		"SELECT count(*) FROM phone_numbers WHERE id = ANY(ARRAY($ids))"
done
trip "rt: 20-page scan, 1 window" 20000 "SELECT count(*) FROM (SELECT id FROM seq.phone_numbers OFFSET 0) s"
trip "rt: 20-page scan, windows" 20000 "SELECT count(*) FROM (SELECT id FROM phone_numbers OFFSET 0) s"
# the windowed scan's critical path: the longest chain of its requests in
# which each started after the one before had been answered (from the
# mock's timeline), in milliseconds
$mockctl clear
vapi_psql -c "SELECT count(*) FROM (SELECT id FROM phone_numbers OFFSET 0) s" >/dev/null
chain=$($mockctl timeline | python3 -c '
import sys
reqs = [tuple(map(float, l.split()[:2])) for l in sys.stdin if l.split()[1] != "-"]
best = {}
for s, e in sorted(reqs):
    best[(s, e)] = (e - s) + max([best[p] for p in best if p[1] <= s] or [0])
print(round(max(best.values() or [0]), 1))')
trip "rt: 20-page scan ordered by created_at, 1 window" 20000 \
	"SELECT count(*) FROM (SELECT id FROM seq.phone_numbers ORDER BY created_at DESC OFFSET 0) s"
trip "rt: 20-page scan ordered by created_at, windows" 20000 \
	"SELECT count(*) FROM (SELECT id FROM phone_numbers ORDER BY created_at DESC OFFSET 0) s"
$mockctl faults-clear

log "statistics: the 100,000-number scan with track_stats on and off"
$mockctl reset --count 100000 --seed 1
for i in $(seq 1 "$REPS"); do
	vapi_psql <<'SQL'
\o /dev/null
SET vapi_fdw.track_stats = off;
SELECT bench('stats off: every column', 100000, 'SELECT count(*) FROM (SELECT * FROM phone_numbers OFFSET 0) s', 1);
SET vapi_fdw.track_stats = on;
SELECT bench('stats on: every column', 100000, 'SELECT count(*) FROM (SELECT * FROM phone_numbers OFFSET 0) s', 1);
SQL
done

log "rate budget: four sessions at once, with and without 20 requests/s"
$mockctl reset --count 2500 --seed 1
vapi_psql <<'SQL'
\getenv url VAPI_MOCK_URL
\getenv key VAPI_MOCK_KEY
CREATE SERVER budget FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'url', page_size '100', max_concurrent_requests '1', count_pushdown 'false',
           max_requests_per_second '20', max_request_burst '5');
CREATE USER MAPPING FOR CURRENT_USER SERVER budget OPTIONS (api_key :'key');
CREATE SCHEMA budget;
IMPORT FOREIGN SCHEMA vapi LIMIT TO (phone_numbers) FROM SERVER budget INTO budget;
CREATE SERVER nobudget FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'url', page_size '100', max_concurrent_requests '1', count_pushdown 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER nobudget OPTIONS (api_key :'key');
CREATE SCHEMA nobudget;
IMPORT FOREIGN SCHEMA vapi LIMIT TO (phone_numbers) FROM SERVER nobudget INTO nobudget;
SQL
# sessions SCHEMA: count(*) of all 2,500 numbers (25 pages) in four
# sessions at once; prints "requests max_in_1s seconds counts"
sessions() {
	local t0 t1 counts
	$mockctl clear
	t0=$(date +%s.%N)
	counts=$(for i in 1 2 3 4; do vapi_psql -tA -c "SELECT count(*) FROM $1.phone_numbers" & done; wait)
	t1=$(date +%s.%N)
	echo "$($mockctl rate | sed 's/max_in_window=\([0-9]*\) requests=\([0-9]*\)/\2 \1/') $(echo "$t1 - $t0" | bc) $(echo $counts)"
}
rate_with=$(sessions budget)
rate_without=$(sessions nobudget)

echo
echo "vapi_fdw benchmark: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), best of $REPS"
vapi_psql <<'SQL'
\pset footer off
SELECT label AS "query", to_char(n, 'FM999,999') AS numbers, best_ms AS "best ms",
       CASE WHEN rows > 1 AND label NOT LIKE '100 small%' AND label NOT LIKE '%latency%'
            THEN to_char(round(n / (best_ms / 1000)), 'FM99,999,999') END AS "rows/s"
  FROM results WHERE label NOT LIKE 'rt:%' AND label NOT LIKE 'stats %' ORDER BY ord;
WITH r AS (SELECT label, n, best_ms FROM results)
SELECT f.n AS numbers, split_part(f.label, ': ', 2) AS "columns",
       round(diy.best_ms / f.best_ms, 2) AS "curl+jsonb / fdw (target >= 2)",
       round(f.best_ms / js.best_ms, 2) AS "fdw / jsonb_to_recordset (target <= 1.5)",
       round(f.best_ms / h.best_ms, 1) AS "fdw / heap"
  FROM r f
  JOIN r js ON js.n = f.n AND js.label = 'jsonb_to_recordset: ' || split_part(f.label, ': ', 2)
  JOIN r h ON h.n = f.n AND h.label = 'heap: ' || split_part(f.label, ': ', 2)
  LEFT JOIN r diy ON diy.n = f.n AND diy.label = 'curl + jsonb_to_recordset: ' || split_part(f.label, ': ', 2)
 WHERE f.label LIKE 'fdw: %'
 ORDER BY f.n, f.label;
SELECT best_ms AS "50 ms latency: wall ms", 11 * 50 AS "pages x 50 ms",
       round(best_ms / (11 * 50), 2) AS "ratio (target <= 1.15)"
  FROM results WHERE label LIKE '%latency%';
SQL
vapi_psql -v chain="$chain" <<'SQL'
\pset footer off
SELECT r.label AS "with 50 ms per request", to_char(r.n, 'FM999,999') AS n,
       t.requests, t.inflight AS "at once", r.best_ms AS "best ms"
  FROM results r JOIN trips t USING (label, n) ORDER BY r.ord;
WITH r AS (SELECT label, n, best_ms FROM results)
SELECT 'count(*) ' || to_char(a.n, 'FM999,999') AS "query",
       round(b.best_ms / a.best_ms, 3) AS "ratio to every page (lower is better)",
       (SELECT requests FROM trips t WHERE t.label = b.label AND t.n = b.n) AS "requests (target <= 2)"
  FROM r a JOIN r b ON a.n = b.n AND b.label = 'rt: count(*), metadata.totalItems'
 WHERE a.label = 'rt: count(*), every page, 1 at a time'
UNION ALL
SELECT 'id IN (' || a.n || ' ids)', round(b.best_ms / a.best_ms, 3),
       NULL
  FROM r a JOIN r b ON b.label = 'rt: id IN (' || a.n || ' ids), concurrent'
 WHERE a.label = 'rt: id IN (' || a.n || ' ids), 1 at a time'
UNION ALL
SELECT '20-page scan', round(b.best_ms / a.best_ms, 3), NULL
  FROM r a, r b WHERE a.label = 'rt: 20-page scan, 1 window' AND b.label = 'rt: 20-page scan, windows'
UNION ALL
SELECT '20-page scan ordered by created_at', round(b.best_ms / a.best_ms, 3), NULL
  FROM r a, r b WHERE a.label = 'rt: 20-page scan ordered by created_at, 1 window'
   AND b.label = 'rt: 20-page scan ordered by created_at, windows';
SELECT :chain AS "windowed scan: critical path ms (longest chain of requests)",
       best_ms AS "wall ms",
       round(best_ms / :chain, 2) AS "ratio (target <= 1.15)"
  FROM results WHERE label = 'rt: 20-page scan, windows';
SQL
vapi_psql <<'SQL'
\pset footer off
WITH s AS (SELECT label, min(best_ms) AS best, max(best_ms) AS worst, count(*) AS runs
             FROM results WHERE label LIKE 'stats %' GROUP BY label)
SELECT on_.runs AS runs, off_.best AS "stats off: best ms", on_.best AS "stats on: best ms",
       round(on_.best / off_.best, 3) AS "on / off (target: within noise)",
       round(off_.worst / off_.best, 3) AS "noise: off worst / off best"
  FROM s on_, s off_
 WHERE on_.label = 'stats on: every column' AND off_.label = 'stats off: every column';
SQL
echo "targets: id IN (50 ids) <= 0.2, 20-page scan <= 0.35"
for r in "with a budget of 20/s, burst 5:$rate_with" "without a budget:$rate_without"; do
	set -- ${r#*:}
	printf '4 sessions x 25 pages %s %s requests, at most %s in any second, %.2f s (%.1f requests/s); counts %s %s %s %s\n' \
		"${r%%:*}" "$1" "$2" "$3" "$(echo "$1 / $3" | bc -l)" "$4" "$5" "$6" "$7"
done
echo "TCP connections used by the 100 small queries ($small_requests requests): $small_conns (target 1)"
set -- $mem
echo "peak memory of the 100,000-number scan: $(( ($2 - $1) / 1024 )) MB above the idle backend (VmHWM $1 kB -> $2 kB; target < 40 MB with windows)"

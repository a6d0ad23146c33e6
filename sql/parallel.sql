--
-- parallel: the defaults of a server, several requests at once
-- (max_concurrent_requests 8) and count(*) from metadata.totalItems.  Rows
-- are compared with a copy read one request at a time (server vapi).
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\! python3 test/mockctl.py reset --count 2500 --seed 1
CREATE SERVER par FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'mock_url', page_size '100');
CREATE USER MAPPING FOR CURRENT_USER SERVER par OPTIONS (api_key :'mock_key');
CREATE SCHEMA par;
IMPORT FOREIGN SCHEMA vapi LIMIT TO (phone_numbers) FROM SERVER par INTO par;
CREATE TABLE par_copy AS SELECT * FROM public.phone_numbers;
SELECT count(*) FROM par_copy;

--
-- count(*) without paging: one request of one row, exact.
--
\! python3 test/mockctl.py clear
SELECT count(*) FROM par.phone_numbers;
SELECT count(*), count(id), count(*) * 2 AS twice FROM par.phone_numbers
 WHERE created_at >= '2024-02-01' AND created_at < '2024-03-01 00:00:00.0005';
SELECT count(*) FROM par_copy
 WHERE created_at >= '2024-02-01' AND created_at < '2024-03-01 00:00:00.0005';
SELECT count(*) FROM par.phone_numbers WHERE updated_at > '2024-03-15';
SELECT count(*) FROM par_copy WHERE updated_at > '2024-03-15';
\! python3 test/mockctl.py requests --clear
SELECT * FROM explain($$SELECT count(*) FROM par.phone_numbers WHERE created_at > '2024-02-01'$$, false, '^$');
SELECT * FROM explain($$SELECT count(*) FROM par.phone_numbers WHERE created_at > '2024-02-01'$$, true, '^$');
\! python3 test/mockctl.py clear
-- a bound that admits no time sends nothing
SELECT count(*) FROM par.phone_numbers WHERE created_at < '-infinity';
\! python3 test/mockctl.py count
-- a generic plan: the bound is a parameter
SET plan_cache_mode = force_generic_plan;
PREPARE par_count(timestamptz) AS
  SELECT count(*) FROM par.phone_numbers WHERE created_at > $1;
EXECUTE par_count('2024-03-01');
SELECT count(*) FROM par_copy WHERE created_at > '2024-03-01';
RESET plan_cache_mode;
\! python3 test/mockctl.py requests --clear
-- stored microseconds: the bounds are whole milliseconds, so still exact
\! python3 test/mockctl.py behave '{"microseconds":true}'
SELECT created_at AS mid FROM par_copy ORDER BY created_at OFFSET 1200 LIMIT 1 \gset
SELECT (SELECT count(*) FROM par.phone_numbers WHERE created_at > :'mid') AS foreign_gt,
       (SELECT count(*) FROM par_copy WHERE created_at > :'mid') AS local_gt,
       (SELECT count(*) FROM par.phone_numbers WHERE created_at <= :'mid') AS foreign_le,
       (SELECT count(*) FROM par_copy WHERE created_at <= :'mid') AS local_le;
\! python3 test/mockctl.py behave-clear
-- what is not pushed: a filter, a search, ids, groups, a column that may be null
SELECT * FROM explain($$SELECT count(*) FILTER (WHERE true) FROM par.phone_numbers$$, false, 'Output:|Vapi');
SELECT * FROM explain($$SELECT count(*) FROM par.phone_numbers WHERE name LIKE '%Main%'$$, false, 'Output:|Vapi|Filter');
SELECT * FROM explain($$SELECT count(name) FROM par.phone_numbers$$, false, 'Output:|Vapi');
SELECT * FROM explain($$SELECT provider, count(*) FROM par.phone_numbers GROUP BY provider$$, false, 'Output:|Vapi|Key');
SELECT count(*) FROM par.phone_numbers WHERE name LIKE '%Main%';
SELECT count(*) FROM par_copy WHERE name LIKE '%Main%';
-- numbers the statement itself created are not counted by it
BEGIN;
WITH ins AS (INSERT INTO par.phone_numbers (provider, number, credential_id)
             VALUES ('byo-phone-number', '+15550001111', '11111111-2222-3333-4444-555555555555')
             RETURNING id)
SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM par.phone_numbers) AS counted;
SELECT count(*) FROM par.phone_numbers;
COMMIT;
\! python3 test/mockctl.py reset --count 2500 --seed 1
-- the retention window: the count says what the API holds, and warns
\! python3 test/mockctl.py behave '{"retention_days":30}'
SELECT count(*) FROM par.phone_numbers;
\! python3 test/mockctl.py behave-clear
-- without totalItems (a deployment without v2) the rows are counted; the
-- connection remembers the deployment until the server is altered (below)
\! python3 test/mockctl.py behave '{"no_v2":true}'
SELECT count(*) FROM par.phone_numbers WHERE created_at >= '2024-03-01';
SELECT count(*) FROM par_copy WHERE created_at >= '2024-03-01';
SELECT * FROM explain($$SELECT count(*) FROM par.phone_numbers WHERE created_at >= '2024-03-01'$$, true, 'Output:|Bytes|Rows Received|Requests');
\! python3 test/mockctl.py behave-clear
-- server option count_pushdown 'false' reads the rows instead
ALTER SERVER par OPTIONS (ADD count_pushdown 'false');
SELECT * FROM explain($$SELECT count(*) FROM par.phone_numbers$$, false, 'Output:|Vapi');
ALTER SERVER par OPTIONS (DROP count_pushdown);
ALTER SERVER par OPTIONS (ADD count_pushdown 'maybe');

--
-- Lookups run eight at a time, answered in the order of the ids.
--
CREATE TABLE par_ids AS SELECT id FROM par_copy ORDER BY created_at LIMIT 20;
SELECT array_agg(id) AS ids FROM par_ids \gset
\! python3 test/mockctl.py fault '[{"match":"GET /phone-number/","kind":"latency","ms":100,"times":0}]'
\! python3 test/mockctl.py clear
SELECT count(*) AS rows, count(DISTINCT id) AS ids,
       count(*) FILTER (WHERE (f.*)::text = (c.*)::text) AS equal_to_copy
  FROM par.phone_numbers f JOIN par_copy c USING (id)
 WHERE f.id = ANY(:'ids');
\! python3 test/mockctl.py overlap
\! python3 test/mockctl.py requests --clear | sed 's/[0-9a-f-]\{36\}/<id>/' | sort | uniq -c
\! python3 test/mockctl.py faults-clear
-- an unknown id is skipped; a failing lookup names its id
SELECT count(*) FROM par.phone_numbers
 WHERE id = ANY(ARRAY['00000000-0000-4000-8000-00000000dead'::uuid] || :'ids'::uuid[]);
\! python3 test/mockctl.py fault '[{"match":"GET /phone-number/","contains":"2bf888ec","kind":"status","status":400,"message":"broken"}]'
SELECT count(*) FROM par.phone_numbers
 WHERE id IN ('2bf888ec-2b89-4219-aeb6-d064430d2694', 'ba55ba19-26d0-4e7a-ac7c-d3a03c07a3ea');
\! python3 test/mockctl.py faults-clear
-- with ANALYZE, a long id list costs more than one list scan
ANALYZE par.phone_numbers;
SELECT array_agg(id) AS many FROM (SELECT id FROM par_copy ORDER BY created_at LIMIT 300) s \gset
SELECT * FROM explain(format('SELECT * FROM par.phone_numbers WHERE id = ANY(%L)', :'ids'), false, 'Output:|Filter');
SELECT * FROM explain(format('SELECT * FROM par.phone_numbers WHERE id = ANY(%L)', :'many'), false, 'Output:|Filter|Local Only');
-- a LIMIT is not sent then: the id list is only checked locally
SELECT count(*) FROM (SELECT id FROM par.phone_numbers WHERE id = ANY(:'many') LIMIT 250) s;
SELECT * FROM explain(format('SELECT id FROM par.phone_numbers WHERE id = ANY(%L) LIMIT 250', :'many'), false, 'Output:|Filter|Local Only');
SELECT * FROM explain($$SELECT * FROM par.phone_numbers WHERE id = '2bf888ec-2b89-4219-aeb6-d064430d2694'$$, false, 'Output:|Filter');

--
-- A full scan in parallel createdAt windows: every row once.
--
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"latency","ms":30,"times":0}]'
\! python3 test/mockctl.py clear
CREATE TEMP TABLE got AS SELECT * FROM par.phone_numbers;
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM got;
SELECT count(*) AS missing FROM (SELECT (c.*)::text FROM par_copy c EXCEPT SELECT (g.*)::text FROM got g) m;
SELECT count(*) AS extra FROM (SELECT (g.*)::text FROM got g EXCEPT SELECT (c.*)::text FROM par_copy c) e;
\! python3 test/mockctl.py overlap
-- more than one window, and as many pages as one window would need, about
SELECT line ~ 'Vapi Windows: ([4-9]|[1-9][0-9])' AS split
  FROM explain('SELECT * FROM par.phone_numbers', true, '^$') AS line
 WHERE line ~ 'Vapi Windows';
-- in created_at order, both ways, with the windows taken in order
SELECT (SELECT array_agg(created_at) FROM (SELECT created_at FROM par.phone_numbers ORDER BY created_at DESC) s)
     = (SELECT array_agg(created_at ORDER BY created_at DESC) FROM par_copy) AS desc_in_order,
       (SELECT array_agg(created_at) FROM (SELECT created_at FROM par.phone_numbers ORDER BY created_at) s)
     = (SELECT array_agg(created_at ORDER BY created_at) FROM par_copy) AS asc_in_order;
SELECT * FROM explain('SELECT id FROM par.phone_numbers ORDER BY created_at', false, 'Output:|Vapi Request');
-- a range scan too
SELECT (SELECT count(*) FROM (SELECT DISTINCT id FROM par.phone_numbers WHERE created_at >= '2024-02-01' OFFSET 0) s) AS foreign_rows,
       (SELECT count(*) FROM par_copy WHERE created_at >= '2024-02-01') AS local_rows;
-- never more requests at once than the option allows
ALTER SERVER par OPTIONS (ADD max_concurrent_requests '2');
\! python3 test/mockctl.py clear
SELECT count(*) FROM (SELECT id FROM par.phone_numbers OFFSET 0) s;
\! python3 test/mockctl.py overlap
ALTER SERVER par OPTIONS (DROP max_concurrent_requests);
\! python3 test/mockctl.py faults-clear

-- Rows created and deleted while the windows page: every number that
-- existed for the whole scan once, none twice, none invented.
CREATE TEMP TABLE before AS SELECT id FROM par_copy;
\! python3 test/mockctl.py mutate '[{"before_list_request":2,"create":10,"delete":10,"at":"newest"},{"before_list_request":6,"create":10,"delete":10,"at":"middle"},{"before_list_request":12,"create":10,"delete":10,"at":"oldest"}]'
CREATE TEMP TABLE during AS SELECT id FROM par.phone_numbers;
\! python3 test/mockctl.py mutations-clear
CREATE TEMP TABLE after AS SELECT id FROM public.phone_numbers;
SELECT count(*) - count(DISTINCT id) AS duplicates FROM during;
SELECT count(*) AS missing FROM (SELECT id FROM before INTERSECT SELECT id FROM after
                                 EXCEPT SELECT id FROM during) m;
SELECT count(*) AS invented FROM (SELECT id FROM during EXCEPT
                                  (SELECT id FROM before UNION SELECT id FROM after)) i;
\! python3 test/mockctl.py reset --count 2500 --seed 1

-- A 429 in one window holds every window once for its Retry-After, and
-- the answer is complete.
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","contains":"createdAtLt=2024-02-15T16%3A22%3A54.709Z","kind":"status","status":429,"retry_after":"1","times":1}]'
\! python3 test/mockctl.py clear
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM (SELECT id FROM par.phone_numbers OFFSET 0) s;
-- (a request sent in the moment before the 429 was read does not count)
\! python3 test/mockctl.py held-after 429 --grace 20
\! python3 test/mockctl.py faults-clear

-- A server that ignores the createdAt filters is an error, not rows twice.
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","contains":"createdAtLt=2024-03-25T01%3A23%3A20.545Z","kind":"body","text":{"results":[{"id":"00000000-0000-4000-8000-000000000001","orgId":"o","provider":"vapi","createdAt":"2030-01-01T00:00:00.000Z","updatedAt":"2030-01-01T00:00:00.000Z"}],"metadata":{"itemsPerPage":100,"totalItems":1,"currentPage":1}},"times":1}]'
SELECT count(*) FROM (SELECT id FROM par.phone_numbers OFFSET 0) s;
\! python3 test/mockctl.py faults-clear

DROP TABLE par_copy, par_ids;
DROP SCHEMA par CASCADE;
DROP SERVER par CASCADE;

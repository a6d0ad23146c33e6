--
-- fidelity: against every behaviour the real API may show (older and
-- regional deployments, or what the spec leaves open), the right rows or a
-- clear error, never a silently wrong answer.  Each switch of the mock is
-- tried with four shapes: a full scan, a time range, the three newest
-- numbers, and a lookup by id; rows are compared with the mock's data read
-- before the switch, and the requests sent are shown.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\! python3 test/mockctl.py reset --count 2500 --seed 1
SET TimeZone = 'UTC';
CREATE SERVER fid FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'mock_url', page_size '100', max_concurrent_requests '1', count_pushdown 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER fid OPTIONS (api_key :'mock_key');
CREATE FOREIGN TABLE fid_numbers (id uuid, name text, created_at timestamptz) SERVER fid;
CREATE TABLE truth AS SELECT id, name, created_at FROM phone_numbers;
SELECT created_at AS lo FROM truth ORDER BY created_at OFFSET 1000 LIMIT 1 \gset
SELECT created_at AS hi FROM truth ORDER BY created_at OFFSET 1400 LIMIT 1 \gset
SELECT id AS one_id FROM truth ORDER BY id LIMIT 1 \gset

-- shapes() runs the four shapes and says, for each, "ok" or what differs
-- from the truth (or the error).  "lo" and "hi" bound the time range.
CREATE FUNCTION shapes(lo timestamptz, hi timestamptz, one uuid, window_start timestamptz DEFAULT '-infinity',
  OUT full_scan text, OUT time_range text, OUT newest3 text, OUT lookup text)
LANGUAGE plpgsql AS $$
DECLARE
  n bigint; d bigint; missing bigint; invented bigint;
  f timestamptz[]; t timestamptz[];
BEGIN
  BEGIN
    CREATE TEMP TABLE got AS SELECT id FROM fid_numbers;
    SELECT count(*), count(DISTINCT id) INTO n, d FROM got;
    SELECT count(*) INTO missing FROM (SELECT id FROM truth WHERE created_at >= window_start EXCEPT SELECT id FROM got) m;
    SELECT count(*) INTO invented FROM (SELECT id FROM got EXCEPT SELECT id FROM truth) i;
    full_scan := CASE WHEN n = d AND missing = 0 AND invented = 0 THEN 'ok ' || n
                 ELSE format('%s rows, %s distinct, %s missing, %s invented', n, d, missing, invented) END;
    DROP TABLE got;
  EXCEPTION WHEN others THEN full_scan := 'ERROR: ' || SQLERRM;
  END;
  BEGIN
    CREATE TEMP TABLE got AS SELECT id FROM fid_numbers WHERE created_at >= lo AND created_at <= hi;
    SELECT count(*), count(DISTINCT id) INTO n, d FROM got;
    SELECT count(*) INTO missing FROM (SELECT id FROM truth WHERE created_at >= lo AND created_at <= hi
                                       AND created_at >= window_start EXCEPT SELECT id FROM got) m;
    SELECT count(*) INTO invented FROM (SELECT id FROM got EXCEPT SELECT id FROM truth WHERE created_at >= lo AND created_at <= hi) i;
    time_range := CASE WHEN n = d AND missing = 0 AND invented = 0 THEN 'ok ' || n
                  ELSE format('%s rows, %s distinct, %s missing, %s invented', n, d, missing, invented) END;
    DROP TABLE got;
  EXCEPTION WHEN others THEN time_range := 'ERROR: ' || SQLERRM;
  END;
  BEGIN
    SELECT array_agg(created_at) INTO f FROM (SELECT created_at FROM fid_numbers ORDER BY created_at DESC LIMIT 3) s;
    SELECT array_agg(created_at) INTO t FROM (SELECT created_at FROM truth ORDER BY created_at DESC LIMIT 3) s;
    newest3 := CASE WHEN f = t THEN 'ok' ELSE 'got ' || f::text END;
  EXCEPTION WHEN others THEN newest3 := 'ERROR: ' || SQLERRM;
  END;
  BEGIN
    SELECT count(*) INTO n FROM fid_numbers WHERE id = one;
    lookup := CASE WHEN n = 1 THEN 'ok' ELSE n || ' rows' END;
  EXCEPTION WHEN others THEN lookup := 'ERROR: ' || SQLERRM;
  END;
END $$;

-- forget what the connection learnt of the deployment: a change of the
-- server's options rebuilds it
CREATE FUNCTION new_connection() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER SERVER fid OPTIONS (SET connect_timeout_ms %L)',
                 (10000 + (random() * 1000)::int)::text);
END $$;
ALTER SERVER fid OPTIONS (ADD connect_timeout_ms '10000');
\set shapes 'SELECT * FROM shapes(:''lo'', :''hi'', :''one_id'')'

-- The current API, as the mock serves it by default.
\! python3 test/mockctl.py clear
:shapes;
\! python3 test/mockctl.py requests --clear | sed 's/&createdAt.*//; s/[0-9a-f-]\{36\}/<id>/' | sort | uniq -c

-- A deployment that refuses sortBy: it is never sent.
\! python3 test/mockctl.py behave '{"reject_params":["sortBy"]}'
:shapes;
\! python3 test/mockctl.py requests --clear | sed 's/&createdAt.*//; s/[0-9a-f-]\{36\}/<id>/' | sort | uniq -c

-- A deployment without sortOrder: the first request gets a 400, which is
-- remembered for the connection; the rest is sent without it (the default
-- order is newest first).
\! python3 test/mockctl.py behave-clear
\! python3 test/mockctl.py behave '{"reject_params":["sortOrder"]}'
SELECT new_connection();
:shapes;
\! python3 test/mockctl.py requests --clear | sed 's/&createdAt.*//; s/[0-9a-f-]\{36\}/<id>/' | sort | uniq -c
-- oldest first cannot be asked for there: a clear error
SELECT created_at FROM fid_numbers ORDER BY created_at LIMIT 3;

-- A deployment without search: the search prefilter is dropped, the name
-- is still checked locally.
\! python3 test/mockctl.py behave-clear
\! python3 test/mockctl.py behave '{"reject_params":["search"]}'
SELECT new_connection();
SELECT count(*) FROM fid_numbers WHERE name = 'Line 00100';
SELECT count(*) FROM fid_numbers WHERE name LIKE 'Line 001%';
\! python3 test/mockctl.py requests --clear | sed 's/&createdAt.*//; s/[0-9a-f-]\{36\}/<id>/' | sort | uniq -c

-- A deployment from before /v2/phone-number: v1 (newest first, limit and
-- time filters only), remembered for the connection; EXPLAIN shows it.
\! python3 test/mockctl.py behave-clear
\! python3 test/mockctl.py behave '{"no_v2":true}'
SELECT new_connection();
:shapes;
\! python3 test/mockctl.py requests --clear | sed 's/&createdAt.*//; s/[0-9a-f-]\{36\}/<id>/' | sort | uniq -c
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM fid_numbers WHERE created_at > '2024-03-01';
SELECT created_at FROM fid_numbers ORDER BY created_at LIMIT 3;
SELECT count(*) FROM fid_numbers WHERE name = 'Line 00100';
\! python3 test/mockctl.py clear

-- A server that stores microseconds and prints milliseconds: page breaks
-- and bounds inside a shared millisecond lose nothing.
\! python3 test/mockctl.py behave-clear
\! python3 test/mockctl.py behave '{"microseconds":true}'
SELECT new_connection();
:shapes;
\! python3 test/mockctl.py requests --clear | sed 's/&createdAt.*//; s/[0-9a-f-]\{36\}/<id>/' | sort | uniq -c
CREATE TEMP TABLE shared_ms AS
  SELECT created_at FROM truth GROUP BY created_at HAVING count(*) > 1 ORDER BY created_at LIMIT 20;
SELECT count(*) AS shared_milliseconds FROM shared_ms;
SELECT sum((SELECT count(*) FROM fid_numbers f WHERE f.created_at = s.created_at)) AS foreign_eq,
       sum((SELECT count(*) FROM truth t WHERE t.created_at = s.created_at)) AS truth_eq
  FROM shared_ms s;
SELECT (SELECT count(*) FROM fid_numbers WHERE created_at <= (SELECT max(created_at) FROM shared_ms)) AS foreign_le,
       (SELECT count(*) FROM truth WHERE created_at <= (SELECT max(created_at) FROM shared_ms)) AS truth_le;
\! python3 test/mockctl.py clear

-- A server that ignores sortOrder (always newest first): newest first is
-- right; oldest first is a clear error, never the newest numbers.
\! python3 test/mockctl.py behave-clear
\! python3 test/mockctl.py behave '{"ignore_sort_order":true}'
SELECT new_connection();
:shapes;
\! python3 test/mockctl.py requests --clear | sed 's/&createdAt.*//; s/[0-9a-f-]\{36\}/<id>/' | sort | uniq -c
SELECT created_at FROM fid_numbers ORDER BY created_at LIMIT 3;
\! python3 test/mockctl.py clear

-- A server that caps the page size below what was asked, silently, and
-- sends no hasNextPage: totalItems says more rows exist.
\! python3 test/mockctl.py behave-clear
\! python3 test/mockctl.py behave '{"cap_limit":30,"no_has_next_page":true}'
SELECT new_connection();
:shapes;
\! python3 test/mockctl.py requests --clear | sed 's/&createdAt.*//; s/[0-9a-f-]\{36\}/<id>/' | sort | uniq -c
-- the same with only itemsPerPage, totalItems and currentPage
\! python3 test/mockctl.py behave '{"minimal_metadata":true}'
:shapes;
\! python3 test/mockctl.py clear

-- A retention window: the answer is limited, and says so.
\! python3 test/mockctl.py behave-clear
\! python3 test/mockctl.py behave '{"retention_days":60}'
SELECT new_connection();
SELECT max(created_at) - interval '60 days' AS window_start FROM truth \gset
SELECT * FROM shapes(:'lo', :'hi', :'one_id', :'window_start');
SELECT count(*) FROM fid_numbers;
ALTER SERVER fid OPTIONS (ADD beyond_retention 'error');
SELECT count(*) FROM fid_numbers;
SELECT count(*) FROM fid_numbers WHERE created_at > now() - interval '1 day';
ALTER SERVER fid OPTIONS (DROP beyond_retention);
ALTER SERVER fid OPTIONS (ADD beyond_retention 'sometimes');
\! python3 test/mockctl.py clear

-- Objects created under older API versions carry server.secret and
-- serverUrlSecret: never in attrs, nor in the server column; only a column
-- whose key names them.  An UPDATE of server_url does not send the stale
-- secret back (the API refuses it).
\! python3 test/mockctl.py behave-clear
\! python3 test/mockctl.py behave '{"legacy_secrets":true}'
SELECT new_connection();
CREATE FOREIGN TABLE legacy (id uuid, server jsonb, server_text text OPTIONS (key 'server'),
  server_secret text OPTIONS (key 'server.secret'), server_url text OPTIONS (key 'server.url'),
  url_secret text OPTIONS (key 'serverUrlSecret'), attrs jsonb) SERVER fid;
SELECT id AS legacy_id FROM legacy WHERE server IS NOT NULL ORDER BY id LIMIT 1 \gset
SELECT server ? 'secret' AS server_has_secret, server_text LIKE '%secret%' AS text_has_secret,
       length(server_secret) AS explicit_secret_length, length(url_secret) AS explicit_url_secret_length,
       attrs ? 'serverUrlSecret' AS attrs_has_url_secret, attrs->'server' ? 'secret' AS attrs_server_secret,
       attrs ? 'serverUrl' AS attrs_has_legacy_url
  FROM legacy WHERE id = :'legacy_id';
SELECT count(*) FILTER (WHERE attrs::text LIKE '%secret%' OR server::text LIKE '%secret%') AS leaks
  FROM legacy;
\! python3 test/mockctl.py clear
UPDATE legacy SET server_url = 'https://new.example.com/hook' WHERE id = :'legacy_id';
\! python3 test/mockctl.py requests --body --clear | grep PATCH | sed 's/[0-9a-f-]\{36\}/<id>/'
SELECT server_url FROM legacy WHERE id = :'legacy_id';
DROP FOREIGN TABLE legacy;

-- Errors that name the real cause: a 403 or 429 page from a proxy in
-- front of the API is not a bad key or Vapi's rate limit.
\! python3 test/mockctl.py behave-clear
SELECT new_connection();
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"html","status":403}]'
SELECT count(*) FROM fid_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"html","status":429,"times":0}]'
ALTER SERVER fid OPTIONS (ADD max_retries '1');
SELECT count(*) FROM fid_numbers;
ALTER SERVER fid OPTIONS (DROP max_retries);
\! python3 test/mockctl.py faults-clear

-- Validation that does not go stale: a field vapi_fdw does not know is
-- passed to the API, whose own message speaks.
\! python3 test/mockctl.py clear
INSERT INTO phone_numbers (provider, number_desired_area_code, attrs)
  VALUES ('vapi', '415', '{"brandNewField": 1}');
CREATE FOREIGN TABLE newer (provider text, number_desired_area_code text,
  brand_new text OPTIONS (key 'brandNewField')) SERVER fid;
INSERT INTO newer VALUES ('vapi', '415', 'x');
\! python3 test/mockctl.py requests --body --clear
DROP FOREIGN TABLE newer;

\! python3 test/mockctl.py behave-clear
\! python3 test/mockctl.py reset --count 2500 --seed 1
DROP FUNCTION shapes(timestamptz, timestamptz, uuid, timestamptz), new_connection();
DROP TABLE truth;
DROP SERVER fid CASCADE;

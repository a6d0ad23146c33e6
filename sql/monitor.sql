--
-- monitor: the view vapi_fdw_stats (with vapi_fdw in
-- shared_preload_libraries: counted across backends), the connection
-- functions, wait events, the rate budget, the statement request budget,
-- the estimated requests of EXPLAIN and the drift check.  Other backends
-- are played with dblink.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\! python3 test/mockctl.py reset --count 2500 --seed 1
\i sql/monitor_setup.inc
-- the stats of server mon, as a short record
CREATE VIEW mon_stats AS
  SELECT scope, requests, requests_get AS get, requests_post AS post,
         requests_patch AS patch, requests_delete AS del,
         responses_2xx AS r2xx, responses_4xx AS r4xx, responses_429 AS r429,
         responses_5xx AS r5xx, transport_errors AS transport, timeouts,
         retries, rows_received AS rows, bytes_sent
    FROM vapi_fdw_stats WHERE server_name = 'mon';

--
-- The view: one row per server and user, counting since the last reset.
--
\d vapi_fdw_stats
SELECT vapi_fdw_stats_reset();
SELECT * FROM mon_stats;
SELECT count(*) FROM mon.phone_numbers;
SELECT * FROM mon_stats;
-- what the mock received, by method: the view agrees with it
\! python3 test/mockctl.py count --match GET
-- a 429 (retried after its Retry-After), a 500 (retried: a read), an
-- answer cut short (retried), and a lookup of an id that does not exist
-- (404)
\! python3 test/mockctl.py clear
SELECT vapi_fdw_stats_reset('mon');
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":429,"retry_after":"1"},{"match":"GET /v2/phone-number","skip":1,"kind":"status","status":500},{"match":"GET /v2/phone-number","skip":2,"kind":"truncate"}]'
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-03-01';
SELECT count(*) FROM mon.phone_numbers WHERE id = '00000000-0000-4000-8000-000000000000';
SELECT * FROM mon_stats;
\! python3 test/mockctl.py count --match GET
\! python3 test/mockctl.py faults-clear
-- the last error: the 404, in the API's own words; latencies are ordered
SELECT last_error_status, last_error, last_error_at > stats_reset AS after_reset,
       latency_p50_ms > 0 AND latency_p50_ms <= latency_p95_ms
         AND latency_p95_ms <= latency_max_ms AS latency_ordered,
       latency_mean_ms <= latency_max_ms AS mean_below_max,
       backoff_ms >= 1000 AS backed_off_a_second, bytes_received > 0 AS bytes
  FROM vapi_fdw_stats WHERE server_name = 'mon';
-- writes: POST, PATCH and DELETE, with the bytes of their bodies
\! python3 test/mockctl.py clear
SELECT vapi_fdw_stats_reset('mon');
INSERT INTO mon.phone_numbers (provider, number, credential_id, name)
  VALUES ('byo-phone-number', '+15550001111', '11111111-2222-3333-4444-555555555555', 'Stats')
  RETURNING name \gset
SELECT id AS new_id FROM mon.phone_numbers WHERE name = 'Stats' \gset
UPDATE mon.phone_numbers SET name = 'Stats 2' WHERE id = :'new_id';
DELETE FROM mon.phone_numbers WHERE id = :'new_id';
SELECT * FROM mon_stats;
\! python3 test/mockctl.py requests --body
-- a secret of the body and the key never reach last_error: the API's
-- answer below echoes both
\! python3 test/mockctl.py fault "{\"match\":\"POST /phone-number\",\"kind\":\"body\",\"status\":400,\"text\":{\"statusCode\":400,\"error\":\"Bad Request\",\"message\":[\"token tok-0123456789-secret is not valid for key $VAPI_MOCK_KEY\"]}}"
INSERT INTO mon.phone_numbers (provider, number, twilio_account_sid, twilio_auth_token)
  VALUES ('twilio', '+15550002222', 'AC0123', 'tok-0123456789-secret');
SELECT last_error_status, last_error,
       position(:'mock_key' in last_error) = 0 AS no_key
  FROM vapi_fdw_stats WHERE server_name = 'mon';
\! python3 test/mockctl.py faults-clear
-- reset one server: only its row is zeroed
SELECT count(*) FROM phone_numbers WHERE id = '00000000-0000-4000-8000-000000000000';
SELECT vapi_fdw_stats_reset('mon');
SELECT server_name, requests, last_error IS NULL AS no_error,
       stats_reset > now() - interval '1 minute' AS just_reset
  FROM vapi_fdw_stats
 WHERE server_name IN ('mon', 'vapi') AND user_name = current_user ORDER BY 1;
SELECT vapi_fdw_stats_reset('no_such_server');
-- the view works in a read-only transaction
BEGIN READ ONLY;
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
SELECT requests, rows FROM mon_stats;
COMMIT;
-- only a superuser may reset (unless granted)
CREATE ROLE mon_reader;
GRANT USAGE ON SCHEMA mon TO mon_reader;
SET ROLE mon_reader;
SELECT count(*) > 0 AS sees_rows FROM vapi_fdw_stats;
-- but not the API's words about another role's requests
SELECT server_name, user_name, last_error_status, last_error FROM vapi_fdw_stats
 WHERE server_name = 'vapi' AND user_name = 'postgres';
SELECT vapi_fdw_stats_reset();
RESET ROLE;

--
-- Two backends at once: the view counts the requests of both.
--
SELECT vapi_fdw_stats_reset();
\! python3 test/mockctl.py clear
SELECT dblink_connect('b1', :'conninfo'), dblink_connect('b2', :'conninfo');
SELECT dblink_send_query('b1', 'SELECT count(*) FROM mon.phone_numbers'),
       dblink_send_query('b2', 'SELECT count(*) FROM mon.phone_numbers WHERE created_at < ''2024-03-01''');
SELECT * FROM dblink_get_result('b1') AS t(n bigint);
SELECT * FROM dblink_get_result('b2') AS t(n bigint);
SELECT * FROM dblink_get_result('b1') AS t(n bigint);
SELECT * FROM dblink_get_result('b2') AS t(n bigint);
SELECT count(*) FROM mon.phone_numbers WHERE created_at < '2024-03-01';
SELECT scope, requests, rows FROM mon_stats;
\! python3 test/mockctl.py count --match GET

--
-- The connection functions.
--
SELECT vapi_fdw_disconnect_all();
SELECT * FROM vapi_fdw_get_connections();
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
SELECT server_name, user_name, handles, in_use, idle,
       last_used > now() - interval '1 minute' AS recent, valid
  FROM vapi_fdw_get_connections() ORDER BY 1;
-- two queries share one TCP connection; a disconnected connection is
-- opened again, on a new TCP connection, by the next query
\! python3 test/mockctl.py clear
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
\! python3 test/mockctl.py requests --conn | awk '{print $1}' | sort -u | wc -l
\! python3 test/mockctl.py clear
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
SELECT vapi_fdw_disconnect('mon');
SELECT vapi_fdw_disconnect('mon');
SELECT server_name FROM vapi_fdw_get_connections() ORDER BY 1;
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
\! python3 test/mockctl.py requests --conn | awk '{print $1}' | sort -u | wc -l
SELECT vapi_fdw_disconnect('no_such_server');
-- an altered server: the connection is no longer valid, and is rebuilt
ALTER SERVER mon OPTIONS (ADD timeout_ms '20000');
SELECT server_name, valid FROM vapi_fdw_get_connections() WHERE server_name = 'mon';
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
SELECT server_name, valid FROM vapi_fdw_get_connections() WHERE server_name = 'mon';
-- a connection in use by an open cursor is not closed
BEGIN;
DECLARE c CURSOR FOR SELECT name FROM mon.phone_numbers ORDER BY created_at DESC;
FETCH 1 FROM c;
SELECT server_name, in_use FROM vapi_fdw_get_connections() WHERE server_name = 'mon';
SELECT vapi_fdw_disconnect('mon');
FETCH 1 FROM c;
COMMIT;
SELECT vapi_fdw_disconnect('mon');

--
-- Wait events, seen from another session: waiting for an answer, backing
-- off before a retry, waiting for the rate budget.
--
SELECT pid AS b1_pid FROM dblink('b1', 'SELECT pg_backend_pid()') AS t(pid int) \gset
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"latency","ms":3000}]'
SELECT dblink_send_query('b1', 'SELECT count(*) FROM mon.phone_numbers WHERE created_at >= ''2024-04-01''');
SELECT wait_for(:b1_pid, vapi_event('VapiFdwRequest')) = vapi_event('VapiFdwRequest') AS waits_for_answer,
       (SELECT wait_event_type FROM pg_stat_activity WHERE pid = :b1_pid) AS type;
SELECT * FROM dblink_get_result('b1') AS t(n bigint);
SELECT * FROM dblink_get_result('b1') AS t(n bigint);
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":503,"retry_after":"3"}]'
SELECT dblink_send_query('b1', 'SELECT count(*) FROM mon.phone_numbers WHERE created_at >= ''2024-04-01''');
SELECT wait_for(:b1_pid, vapi_event('VapiFdwBackoff')) = vapi_event('VapiFdwBackoff') AS waits_backing_off;
SELECT * FROM dblink_get_result('b1') AS t(n bigint);
SELECT * FROM dblink_get_result('b1') AS t(n bigint);
\! python3 test/mockctl.py faults-clear
CREATE SERVER slow FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'mock_url', page_size '100', max_concurrent_requests '1',
           count_pushdown 'false', max_requests_per_second '1', max_request_burst '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER slow OPTIONS (api_key :'mock_key');
CREATE SCHEMA slow;
IMPORT FOREIGN SCHEMA vapi LIMIT TO (phone_numbers) FROM SERVER slow INTO slow;
-- three requests at one per second: the second and third wait
SELECT dblink_send_query('b1', 'SELECT count(*) FROM slow.phone_numbers WHERE created_at >= ''2024-04-01''');
SELECT wait_for(:b1_pid, vapi_event('VapiFdwRateBudget')) = vapi_event('VapiFdwRateBudget') AS waits_for_budget;
SELECT * FROM dblink_get_result('b1') AS t(n bigint);
SELECT * FROM dblink_get_result('b1') AS t(n bigint);
SELECT requests, rate_waits, rate_wait_ms > 1500 AS waited_seconds
  FROM vapi_fdw_stats WHERE server_name = 'slow';

--
-- The rate budget, shared by every backend using the key: four sessions
-- at once under 20 requests per second with a burst of 5 never exceed 25
-- requests in any second at the mock, and every result is complete.
-- Without the budget the same four sessions send all of theirs at once.
--
CREATE SERVER rl FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'mock_url', page_size '100', max_concurrent_requests '1',
           count_pushdown 'false', max_requests_per_second '20', max_request_burst '5');
CREATE USER MAPPING FOR CURRENT_USER SERVER rl OPTIONS (api_key :'mock_key');
CREATE SCHEMA rl;
IMPORT FOREIGN SCHEMA vapi LIMIT TO (phone_numbers) FROM SERVER rl INTO rl;
SELECT dblink_connect('b3', :'conninfo'), dblink_connect('b4', :'conninfo');
-- four_counts(schema): count(*) of the table in four sessions at once
CREATE FUNCTION four_counts(schema text) RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
  c text;
  n bigint;
BEGIN
  FOREACH c IN ARRAY ARRAY['b1', 'b2', 'b3', 'b4'] LOOP
    PERFORM dblink_send_query(c, format('SELECT count(*) FROM %I.phone_numbers WHERE created_at < %L',
                                        schema, '2024-02-01'));
  END LOOP;
  FOREACH c IN ARRAY ARRAY['b1', 'b2', 'b3', 'b4'] LOOP
    SELECT t.n INTO n FROM dblink_get_result(c) AS t(n bigint);
    PERFORM * FROM dblink_get_result(c) AS t(n bigint);
    RETURN NEXT n;
  END LOOP;
END $$;
-- (the sessions of dblink run in the server's time zone, UTC)
SET timezone = 'UTC';
SELECT count(*) FROM mon.phone_numbers WHERE created_at < '2024-02-01';
RESET timezone;
\! python3 test/mockctl.py clear
SELECT * FROM four_counts('rl');
\! python3 test/mockctl.py rate --at-most 25
ALTER SERVER rl OPTIONS (DROP max_requests_per_second, DROP max_request_burst);
\! python3 test/mockctl.py clear
SELECT * FROM four_counts('rl');
\! python3 test/mockctl.py rate --at-most 25
-- a 429 seen by one backend holds the others that use the key: b2 starts
-- while b1 is held for 2 s, and sends nothing until the hold ends
\i sql/monitor_hold.inc

--
-- The statement request budget: a statement stops before the request
-- past vapi_fdw.max_requests_per_statement, and says so.
--
\! python3 test/mockctl.py clear
SET vapi_fdw.max_requests_per_statement = 3;
SELECT count(*) FROM mon.phone_numbers;
\! python3 test/mockctl.py count
-- each statement has its own budget; retries count
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-03-01';
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":503,"retry_after":"0"}]'
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-03-01';
\! python3 test/mockctl.py faults-clear
-- a write stopped by the budget says what it applied at Vapi; the
-- request it refused is never sent, not even by the next statement
\! python3 test/mockctl.py clear
SET vapi_fdw.max_requests_per_statement = 2;
INSERT INTO mon.phone_numbers (provider, number, credential_id, name)
  SELECT 'byo-phone-number', '+1555000300' || i, '11111111-2222-3333-4444-555555555555', 'Budget ' || i
    FROM generate_series(1, 3) AS i;
RESET vapi_fdw.max_requests_per_statement;
SELECT name FROM mon.phone_numbers WHERE name LIKE 'Budget %' ORDER BY 1;
\! python3 test/mockctl.py count --match POST
DELETE FROM mon.phone_numbers WHERE name LIKE 'Budget %';
SET vapi_fdw.max_requests_per_statement = -1;
SHOW vapi_fdw.max_requests_per_statement;
SET vapi_fdw.no_such_setting = 1;
RESET vapi_fdw.max_requests_per_statement;

--
-- EXPLAIN shows the requests each scan is estimated to send (with the
-- costs, as the estimate it is).
--
CREATE FUNCTION explain_requests(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN ' || q LOOP
    CONTINUE WHEN line !~ '(Foreign Scan|Vapi Estimated|Nested Loop|Hash)';
    RETURN NEXT regexp_replace(line, '\s*\(cost=.*\)', '');
  END LOOP;
END $$;
SELECT * FROM explain_requests('SELECT * FROM mon.phone_numbers');
SELECT * FROM explain_requests('SELECT * FROM mon.phone_numbers WHERE created_at >= now() - interval ''1 day''');
SELECT * FROM explain_requests('SELECT * FROM mon.phone_numbers ORDER BY created_at DESC LIMIT 10');
SELECT * FROM explain_requests($$SELECT * FROM mon.phone_numbers WHERE id IN ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000003')$$);
ALTER SERVER mon OPTIONS (SET count_pushdown 'true');
SELECT * FROM explain_requests('SELECT count(*) FROM mon.phone_numbers');
ALTER SERVER mon OPTIONS (SET count_pushdown 'false');
CREATE TEMP TABLE crm (vapi_id uuid);
INSERT INTO crm VALUES ('00000000-0000-4000-8000-000000000001');
ANALYZE crm;
SELECT * FROM explain_requests('SELECT * FROM crm JOIN mon.phone_numbers p ON p.id = crm.vapi_id');
-- ANALYZE makes the estimate follow the table's size
ANALYZE mon.phone_numbers;
SELECT * FROM explain_requests('SELECT * FROM mon.phone_numbers');
SELECT * FROM explain_requests('SELECT * FROM mon.phone_numbers WHERE created_at < ''2024-02-01''');
EXPLAIN (COSTS OFF) SELECT * FROM mon.phone_numbers;

--
-- Drift: a column whose key no phone number of a whole page carried
-- (renamed or removed by the API) gets one WARNING per table and backend;
-- field_drift 'error' makes it an ERROR, 'off' turns the check off.
-- Optional fields (squad_id here) are absent whenever unset: not checked.
--
CREATE FOREIGN TABLE mon.drift (id uuid, org_id text, squad_id text, created_at timestamptz,
                                stripe_id text OPTIONS (key 'stripeSubscriptionId'))
  SERVER mon;
-- a key vapi_fdw does not know may be an optional field: judged on a full
-- page only (page_size 500: 243 numbers are not one, 1003 are)
SELECT count(stripe_id), count(squad_id) FROM mon.drift WHERE created_at >= '2024-04-01';
SELECT count(stripe_id), count(squad_id) FROM mon.drift WHERE created_at >= '2024-03-01';
SELECT count(stripe_id) FROM mon.drift WHERE created_at >= '2024-03-01';
-- a field the API renamed: orgId served as organizationId
\! python3 test/mockctl.py behave '{"rename_fields":{"orgId":"organizationId"}}'
SELECT count(*), count(org_id) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
SELECT count(*), count(org_id) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
ALTER FOREIGN TABLE mon.phone_numbers OPTIONS (ADD field_drift 'error');
SELECT count(*), count(org_id) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
-- not read, not checked
SELECT count(*), count(name) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
ALTER FOREIGN TABLE mon.phone_numbers OPTIONS (SET field_drift 'off');
SELECT count(*), count(org_id) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
ALTER FOREIGN TABLE mon.phone_numbers OPTIONS (SET field_drift 'sometimes');
ALTER FOREIGN TABLE mon.phone_numbers OPTIONS (DROP field_drift);
\! python3 test/mockctl.py behave-clear
-- a field some providers require: number (twilio, vonage, telnyx; a vapi
-- number may have none)
CREATE FOREIGN TABLE mon.drift2 (provider text, number text, created_at timestamptz)
  SERVER mon OPTIONS (field_drift 'error');
\! python3 test/mockctl.py behave '{"rename_fields":{"number":"phoneNumber"}}'
SELECT provider, count(*), count(number) FROM mon.drift2
 WHERE created_at >= '2024-04-01' GROUP BY 1 ORDER BY 1;
\! python3 test/mockctl.py behave-clear

--
-- Server options of the rate budget.
--
ALTER SERVER rl OPTIONS (ADD max_requests_per_second '0.5', ADD max_request_burst '3');
SELECT array_agg(o) FROM pg_foreign_server, unnest(srvoptions) AS o
 WHERE srvname = 'rl' AND o LIKE 'max_request%';
ALTER SERVER rl OPTIONS (SET max_requests_per_second '-1');
ALTER SERVER rl OPTIONS (SET max_requests_per_second '1e3');
ALTER SERVER rl OPTIONS (SET max_requests_per_second '0.0001');
ALTER SERVER rl OPTIONS (SET max_requests_per_second '100001');
ALTER SERVER rl OPTIONS (SET max_request_burst '0');
ALTER SERVER rl OPTIONS (ADD max_request_burst_size '5');
CREATE FOREIGN TABLE mon.bad (id uuid) SERVER mon OPTIONS (field_drift 'warn');

SELECT dblink_disconnect('b1'), dblink_disconnect('b2'),
       dblink_disconnect('b3'), dblink_disconnect('b4');
DROP SCHEMA mon, slow, rl CASCADE;
DROP USER MAPPING FOR CURRENT_USER SERVER mon;
DROP USER MAPPING FOR CURRENT_USER SERVER slow;
DROP USER MAPPING FOR CURRENT_USER SERVER rl;
DROP SERVER mon, slow, rl;
DROP ROLE mon_reader;
DROP EXTENSION dblink;

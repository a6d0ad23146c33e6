--
-- reliability: retries, cancel and timeouts, bad responses, credentials
-- and SSRF.  A misbehaving API never hangs a backend, never shortens a
-- result silently, and never sees or leaks the key where it should not.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\getenv blackhole_url VAPI_BLACKHOLE_URL
\set VERBOSITY default
\! python3 test/mockctl.py reset --count 2500 --seed 1
CREATE FUNCTION elapsed_ms(t0 timestamptz) RETURNS int LANGUAGE sql
  AS $$ SELECT (extract(epoch FROM clock_timestamp() - t0) * 1000)::int $$;

--
-- Retries.
--
-- 429 with Retry-After in seconds: waited for, then the page is fetched
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","skip":1,"kind":"status","status":429,"retry_after":"1"}]'
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM phone_numbers;
SELECT elapsed_ms(:'t0') >= 900 AS waited_retry_after;
\! python3 test/mockctl.py requests --clear | sed 's/createdAtLe=.*/createdAtLe=.../'
-- 429 with Retry-After as an HTTP date
\! python3 test/mockctl.py fault "[{\"match\":\"GET /v2/phone-number\",\"kind\":\"status\",\"status\":429,\"retry_after\":\"$(date -u -d '+2 seconds' '+%a, %d %b %Y %H:%M:%S GMT')\"}]"
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM phone_numbers;
SELECT elapsed_ms(:'t0') >= 900 AS waited_retry_after_date;
\! python3 test/mockctl.py count --match "GET /v2"
\! python3 test/mockctl.py clear
-- 502, 503, 504 and a cut connection are retried; a 500 too, for a GET
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":502},{"match":"GET /v2/phone-number","skip":1,"kind":"status","status":503},{"match":"GET /v2/phone-number","skip":2,"kind":"status","status":504},{"match":"GET /v2/phone-number","skip":3,"kind":"cut"}]'
SELECT * FROM explain('SELECT count(*) FROM phone_numbers');
\! python3 test/mockctl.py clear
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":500}]'
SELECT count(*) FROM phone_numbers;
\! python3 test/mockctl.py count --match "GET /v2"
\! python3 test/mockctl.py clear
-- retries run out: the error says how many attempts were made (the count
-- caps them here; by default the time budget of timeout_ms does)
ALTER SERVER vapi OPTIONS (ADD max_retries '3');
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":503,"times":0}]'
SELECT count(*) FROM phone_numbers;
ALTER SERVER vapi OPTIONS (DROP max_retries);
\! python3 test/mockctl.py faults-clear
\! python3 test/mockctl.py count --match "GET /v2"
\! python3 test/mockctl.py clear
-- a wait that would pass statement_timeout is not started: the error comes
-- at once and says why
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":429,"retry_after":"20","times":0}]'
SET statement_timeout = '5s';
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM phone_numbers;
RESET statement_timeout;
SELECT elapsed_ms(:'t0') < 2000 AS failed_at_once;
\! python3 test/mockctl.py faults-clear
\! python3 test/mockctl.py clear

-- PATCH and DELETE are retried.  A DELETE whose answer was lost is sent
-- again, gets 404, and counts as done.
INSERT INTO phone_numbers (provider, number, credential_id, name)
  VALUES ('telnyx', '+13125559001', '55555555-5555-4555-8555-555555555555', 'retry me')
  RETURNING id AS retry_id \gset
\! python3 test/mockctl.py clear
\! python3 test/mockctl.py fault '[{"match":"PATCH /phone-number","kind":"status","status":503}]'
UPDATE phone_numbers SET name = 'patched' WHERE id = :'retry_id' RETURNING name;
\! python3 test/mockctl.py fault '[{"match":"DELETE /phone-number","kind":"truncate"}]'
WITH d AS (DELETE FROM phone_numbers WHERE id = :'retry_id' RETURNING 1) SELECT count(*) AS deleted FROM d;
\! python3 test/mockctl.py requests --clear | sed 's/[0-9a-f-]\{36\}/<id>/'
-- A POST is never sent twice, whatever happens to its answer.
\! python3 test/mockctl.py fault '[{"match":"POST /phone-number","kind":"status","status":503}]'
INSERT INTO phone_numbers (provider, number, credential_id) VALUES ('telnyx', '+13125559002', 'c');
\! python3 test/mockctl.py fault '[{"match":"POST /phone-number","kind":"cut"}]'
INSERT INTO phone_numbers (provider, number, credential_id) VALUES ('telnyx', '+13125559003', 'c');
\! python3 test/mockctl.py fault '[{"match":"POST /phone-number","kind":"status","status":429,"retry_after":"0"}]'
INSERT INTO phone_numbers (provider, number, credential_id) VALUES ('telnyx', '+13125559004', 'c');
\! python3 test/mockctl.py faults-clear
\! python3 test/mockctl.py requests --clear

--
-- Cancel and timeouts end a stuck query promptly, with SQLSTATE 57014,
-- and the backend stays usable.
--
\set VERBOSITY sqlstate
-- a stalled transfer, ended by statement_timeout
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"stall","ms":10000}]'
SET statement_timeout = '300ms';
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM phone_numbers;
RESET statement_timeout;
SELECT elapsed_ms(:'t0') < 800 AS ended_within_half_a_second;
-- a stalled transfer, ended by pg_cancel_backend
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"stall","ms":10000}]'
SELECT clock_timestamp() AS t0 \gset
\! (sleep 0.3; psql -X -q -d contrib_regression -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%cancel stalled%' AND pid <> pg_backend_pid()" >/dev/null 2>&1) &
SELECT count(*) FROM phone_numbers /* cancel stalled */;
SELECT elapsed_ms(:'t0') < 800 AS ended_within_half_a_second;
-- stuck connecting (a TLS handshake that never completes)
CREATE SERVER hole FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'blackhole_url', max_retries '0', connect_timeout_ms '600000', timeout_ms '600000',
           count_pushdown 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER hole OPTIONS (api_key :'mock_key');
CREATE FOREIGN TABLE hole_numbers (id uuid) SERVER hole;
SET statement_timeout = '300ms';
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM hole_numbers;
RESET statement_timeout;
SELECT elapsed_ms(:'t0') < 800 AS ended_within_half_a_second;
-- connect_timeout_ms bounds the same wait without a statement_timeout
\set VERBOSITY default
ALTER SERVER hole OPTIONS (SET connect_timeout_ms '300');
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM hole_numbers;
SELECT elapsed_ms(:'t0') < 800 AS ended_within_half_a_second;
\set VERBOSITY sqlstate
-- a back-off wait, ended by pg_cancel_backend
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":503,"retry_after":"5"}]'
SELECT clock_timestamp() AS t0 \gset
\! (sleep 0.3; psql -X -q -d contrib_regression -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%cancel back-off%' AND pid <> pg_backend_pid()" >/dev/null 2>&1) &
SELECT count(*) FROM phone_numbers /* cancel back-off */;
SELECT elapsed_ms(:'t0') < 800 AS ended_within_half_a_second;
\! python3 test/mockctl.py faults-clear
-- pg_terminate_backend ends another session's stalled transfer
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"stall","ms":10000}]'
\! (psql -X -q -d contrib_regression -c "SELECT count(*) FROM phone_numbers /* terminate me */" > /tmp/vapi_fdw_terminated.out 2>&1 &) ; sleep 0.5; psql -X -q -d contrib_regression -tA -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%terminate me%' AND pid <> pg_backend_pid()"; sleep 0.5; grep -o 'terminating connection due to administrator command' /tmp/vapi_fdw_terminated.out; rm -f /tmp/vapi_fdw_terminated.out
\! python3 test/mockctl.py faults-clear
\set VERBOSITY default
-- the backend works, on a new connection (the abandoned one is discarded)
\! python3 test/mockctl.py clear
SELECT count(*) FROM phone_numbers;
SELECT count(*) FROM phone_numbers WHERE id = '2bf888ec-2b89-4219-aeb6-d064430d2694';
\! python3 test/mockctl.py requests --conn --clear | sed 's/conn=[0-9]*/conn=N/; s/createdAtLe=.*/createdAtLe=.../' | uniq -c

--
-- Bad responses: fields of the wrong JSON type name the column and row.
--
\! python3 test/mockctl.py put '[{"id":"00000000-0000-4000-8000-0000000000b1","orgId":"o","provider":"vapi","createdAt":"2030-01-01T00:00:00.000Z","updatedAt":{"when":"now"},"name":["a","b"],"numberE164CheckEnabled":"sometimes"},{"id":12345,"orgId":"o","provider":"vapi","createdAt":"2029-01-01T00:00:00.000Z","updatedAt":"2029-01-01T00:00:00.000Z"}]'
SELECT name FROM phone_numbers WHERE created_at = '2030-01-01 00:00:00+00';
SELECT updated_at FROM phone_numbers WHERE created_at = '2030-01-01 00:00:00+00';
SELECT number_e164_check_enabled FROM phone_numbers WHERE created_at = '2030-01-01 00:00:00+00';
SELECT id FROM phone_numbers WHERE created_at = '2029-01-01 00:00:00+00';
-- the same answer for a lookup
\! python3 test/mockctl.py fault '[{"match":"GET /phone-number/","kind":"body","status":200,"content_type":"application/json","text":"[1,2,3]"}]'
SELECT id FROM phone_numbers WHERE id = '2bf888ec-2b89-4219-aeb6-d064430d2694';
\! python3 test/mockctl.py fault '[{"match":"GET /phone-number/","kind":"malformed"}]'
SELECT id FROM phone_numbers WHERE id = '2bf888ec-2b89-4219-aeb6-d064430d2694';
\! python3 test/mockctl.py faults-clear
\! python3 test/mockctl.py reset --count 2500 --seed 1

--
-- Credentials.
--
-- nothing at any log level carries the key
SET log_min_messages = debug5;
SELECT count(*) FROM phone_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":401,"message":"Invalid Key"}]'
SELECT count(*) FROM phone_numbers;
RESET log_min_messages;
\! python3 test/mockctl.py faults-clear
\! grep -cF "$VAPI_MOCK_KEY" "$PGHOST/server.log"
\! grep -c 'DEBUG' "$PGHOST/server.log" | awk '{ print ($1 > 0) ? "the log has debug lines" : "no debug lines" }'
-- nor does EXPLAIN
CREATE TEMP TABLE plan_text (line text);
DO $$
DECLARE
  l text;
BEGIN
  FOR l IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, BUFFERS OFF) SELECT * FROM phone_numbers WHERE created_at > ''2024-04-01'''
  LOOP
    INSERT INTO plan_text VALUES (l);
  END LOOP;
END $$;
SELECT count(*) AS plan_lines, count(*) FILTER (WHERE position(:'mock_key' IN line) > 0) AS with_key
  FROM plan_text;
-- a column privilege hides the secret columns; attrs never has them
CREATE ROLE regress_dashboard;
GRANT SELECT (id, number, provider, attrs, created_at) ON phone_numbers TO regress_dashboard;
CREATE USER MAPPING FOR regress_dashboard SERVER vapi OPTIONS (api_key :'mock_key');
SET ROLE regress_dashboard;
SELECT count(*) AS with_secrets FROM phone_numbers
 WHERE attrs ? 'twilioAuthToken' OR attrs ? 'twilioApiSecret' OR attrs->'authentication' ? 'password';
SELECT twilio_auth_token FROM phone_numbers LIMIT 1;
SELECT * FROM phone_numbers LIMIT 1;
RESET ROLE;
DROP USER MAPPING FOR regress_dashboard SERVER vapi;
REVOKE ALL ON phone_numbers FROM regress_dashboard;
DROP ROLE regress_dashboard;

--
-- No SSRF, no downgrade: redirects are not followed, TLS verification
-- cannot be turned off, and only a superuser may choose the URL (see the
-- options test).
--
\! python3 test/mockctl.py clear
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"body","status":302,"content_type":"text/plain","text":"moved","headers":{"Location":"http://127.0.0.2:9/steal"}}]'
SELECT count(*) FROM phone_numbers;
\! python3 test/mockctl.py requests --clear
\! python3 test/mockctl.py faults-clear
ALTER SERVER vapi OPTIONS (ADD ssl_verify 'false');
ALTER SERVER vapi OPTIONS (ADD insecure 'true');

DROP SERVER hole CASCADE;
DROP FUNCTION elapsed_ms;

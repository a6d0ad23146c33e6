--
-- errors: what the API answers when things go wrong becomes a clear
-- ERROR, with Vapi's message in the detail and the request in the context.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\set VERBOSITY default
\! python3 test/mockctl.py reset --count 2500 --seed 1

-- A server with no retries and short timeouts for the failure cases.
CREATE SERVER fragile FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'mock_url', max_retries '0', timeout_ms '1000', connect_timeout_ms '1000',
           max_concurrent_requests '1', count_pushdown 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER fragile OPTIONS (api_key :'mock_key');
CREATE FOREIGN TABLE fragile_numbers (id uuid, number text) SERVER fragile;

-- HTTP 500 with a string message; 400 with an array of messages.
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":500,"message":"database is on fire"}]'
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"body","status":400,"content_type":"application/json","text":"{\"statusCode\":400,\"message\":[\"limit must not be greater than 1000\",\"sortOrder must be one of the following values: ASC, DESC\"],\"error\":\"Bad Request\"}"}]'
SELECT count(*) FROM fragile_numbers;

-- A proxy's HTML error page, a wrong content type, malformed and
-- truncated JSON, a body that is not a list.
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"html","status":502}]'
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"content_type","value":"text/plain"}]'
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"malformed"}]'
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"body","status":200,"content_type":"application/json","text":"{\"results\": {\"id\": 1}}"}]'
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"body","status":200,"content_type":"application/json","text":"[1, 2]"}]'
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"body","status":200,"content_type":"application/json","text":"\"just a string\""}]'
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"body","status":200,"content_type":"application/json","text":"{\"results\": [], \"metadata\": {}} trailing"}]'
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"truncate"}]'
SELECT count(*) FROM fragile_numbers;

-- A cut connection, a stalled transfer (timeout_ms), a refused connection.
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"cut"}]'
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"stall","ms":5000}]'
SELECT count(*) FROM fragile_numbers;
CREATE SERVER nowhere FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url 'http://127.0.0.1:9', max_retries '0', count_pushdown 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER nowhere OPTIONS (api_key :'mock_key');
CREATE FOREIGN TABLE nowhere_numbers (id uuid) SERVER nowhere;
SELECT count(*) FROM nowhere_numbers;

-- A response over max_response_bytes.
ALTER SERVER fragile OPTIONS (ADD max_response_bytes '2048');
SELECT count(*) FROM fragile_numbers;
ALTER SERVER fragile OPTIONS (DROP max_response_bytes);

-- statement_timeout and a query cancel end a stalled transfer promptly
-- with the normal errors, and the backend stays usable.
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"stall","ms":10000}]'
SET statement_timeout = '300ms';
SELECT count(*) FROM phone_numbers;
RESET statement_timeout;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"stall","ms":10000}]'
\! (sleep 0.3; psql -X -q -d contrib_regression -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT count(*) FROM phone_numbers /* cancel me */%'" >/dev/null 2>&1) &
SELECT count(*) FROM phone_numbers /* cancel me */;
\! python3 test/mockctl.py faults-clear

-- The backend is fine after all that.
\! python3 test/mockctl.py faults-clear
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py clear

-- Retries on the default server: a 429 with Retry-After, a 503 and a cut
-- connection are retried and the scan completes; EXPLAIN ANALYZE counts.
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","skip":1,"kind":"status","status":429,"retry_after":"1"},{"match":"GET /v2/phone-number","skip":2,"kind":"status","status":503},{"match":"GET /v2/phone-number","skip":3,"kind":"cut"}]'
SELECT * FROM explain('SELECT count(*) FROM phone_numbers');
\! python3 test/mockctl.py requests --clear

-- A rate limit that does not lift: an error saying so, never a short result.
ALTER SERVER vapi OPTIONS (ADD max_retries '3');
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","skip":1,"times":0,"kind":"status","status":429,"retry_after":"0"}]'
SELECT count(*) FROM phone_numbers;
ALTER SERVER vapi OPTIONS (DROP max_retries);
\! python3 test/mockctl.py faults-clear
\! python3 test/mockctl.py count --match "GET /v2"
\! python3 test/mockctl.py clear

-- A message that echoes the key is redacted.
\! python3 test/mockctl.py fault "[{\"match\":\"GET /v2/phone-number\",\"kind\":\"status\",\"status\":400,\"message\":\"bad key $VAPI_MOCK_KEY here\"}]"
SELECT count(*) FROM fragile_numbers;
\! python3 test/mockctl.py faults-clear

-- A write whose 2xx answer says it is not JSON: the same error as for a
-- scan, sent once, and the context says the row was created (2xx).
\! python3 test/mockctl.py clear
\! python3 test/mockctl.py fault '[{"match":"POST /phone-number","kind":"content_type","value":"text/html"}]'
INSERT INTO phone_numbers (provider, number, credential_id, name)
  VALUES ('byo-phone-number', '+15550001234', '7a3e0b52-2c5f-4b9c-9f4e-000000000001', 'not json');
\! python3 test/mockctl.py count --match POST
\! python3 test/mockctl.py faults-clear
\! python3 test/mockctl.py reset

DROP SERVER fragile CASCADE;
DROP SERVER nowhere CASCADE;

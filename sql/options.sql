--
-- options: the validator, and the errors for missing mappings and keys.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\set VERBOSITY default

-- The wrapper itself takes no options.
ALTER FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'https://api.vapi.ai');

-- Server options: names.
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (page_sise '10');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (timeout '10');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (colour 'blue');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (api_key 'x');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (key 'x');

-- Server options: integer values and ranges.
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (page_size '0');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (page_size '1001');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (page_size '10x');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (page_size '');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (timeout_ms '-5');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (connect_timeout_ms '99999999999999999999');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (max_retries '101');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (max_response_bytes '100');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (prefetch 'maybe');

-- Server options: URL syntax.
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'api.vapi.ai');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'ftp://api.vapi.ai');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'https://user:pw@api.vapi.ai');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'https://api.vapi.ai/?x=1');
CREATE SERVER bad FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'https://api.vapi.ai/#top');

-- Every valid server option, and ALTER.
CREATE SERVER good FOREIGN DATA WRAPPER vapi_fdw OPTIONS (
  url 'https://api.eu.vapi.ai', connect_timeout_ms '1000', timeout_ms '5000',
  max_retries '0', page_size '1000', max_response_bytes '1048576', prefetch 'off');
ALTER SERVER good OPTIONS (SET page_size '50', DROP max_retries);
ALTER SERVER good OPTIONS (ADD page_sizes '50');
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname = 'good';

-- User mapping options: only api_key, never echoed.
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (apikey 'k');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (url 'https://api.vapi.ai');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (api_key '');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (api_key 'has space-secret-part');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (api_key e'line\nbreak-secret-part');

-- Table and column options.
CREATE FOREIGN TABLE bad_t (id text) SERVER good OPTIONS (page_size '5');
CREATE FOREIGN TABLE bad_t (id text OPTIONS (kye 'id')) SERVER good;
CREATE FOREIGN TABLE bad_t (id text OPTIONS (key '')) SERVER good;
CREATE FOREIGN TABLE bad_t (id text OPTIONS (key 'server..url')) SERVER good;
CREATE FOREIGN TABLE bad_t (id text OPTIONS (key '.url')) SERVER good;
CREATE FOREIGN TABLE good_t (id text OPTIONS (key 'id'), url text OPTIONS (key 'server.url')) SERVER good;
SELECT attname, attfdwoptions FROM pg_attribute
  WHERE attrelid = 'good_t'::regclass AND attnum > 0 ORDER BY attnum;
DROP FOREIGN TABLE good_t;

-- Only a superuser may point a server anywhere but the two Vapi hosts.
CREATE ROLE regress_vapi_user;
GRANT USAGE ON FOREIGN DATA WRAPPER vapi_fdw TO regress_vapi_user;
SET ROLE regress_vapi_user;
CREATE SERVER mine FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'http://127.0.0.1:1');
CREATE SERVER mine FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'http://api.vapi.ai');
CREATE SERVER mine FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'https://api.vapi.ai:8443');
CREATE SERVER mine FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'https://api.vapi.ai.example.com');
CREATE SERVER mine FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url 'https://API.eu.vapi.ai/');
ALTER SERVER mine OPTIONS (SET url 'http://127.0.0.1:1');
CREATE SERVER mine2 FOREIGN DATA WRAPPER vapi_fdw;
RESET ROLE;
DROP SERVER mine;
DROP SERVER mine2;

-- Missing user mapping: the error says what to create.
GRANT SELECT ON phone_numbers TO regress_vapi_user;
SET ROLE regress_vapi_user;
SELECT count(*) FROM phone_numbers;
RESET ROLE;

-- A user mapping without api_key: the error says what to add.
CREATE USER MAPPING FOR regress_vapi_user SERVER vapi;
SET ROLE regress_vapi_user;
SELECT count(*) FROM phone_numbers;
RESET ROLE;

-- A PUBLIC mapping is used when the role has none.
DROP USER MAPPING FOR regress_vapi_user SERVER vapi;
CREATE USER MAPPING FOR PUBLIC SERVER vapi OPTIONS (api_key :'mock_key');
SET ROLE regress_vapi_user;
SELECT count(*) FROM phone_numbers;
RESET ROLE;
DROP USER MAPPING FOR PUBLIC SERVER vapi;

-- A wrong key: Vapi's message in the detail, a hint, and no key anywhere.
CREATE USER MAPPING FOR regress_vapi_user SERVER vapi OPTIONS (api_key 'wrong-key-for-this-test');
SET ROLE regress_vapi_user;
SELECT count(*) FROM phone_numbers;
RESET ROLE;
DROP USER MAPPING FOR regress_vapi_user SERVER vapi;

-- Plain EXPLAIN needs neither a mapping nor the network.
SET ROLE regress_vapi_user;
EXPLAIN (COSTS OFF) SELECT * FROM phone_numbers;
RESET ROLE;

REVOKE SELECT ON phone_numbers FROM regress_vapi_user;
REVOKE USAGE ON FOREIGN DATA WRAPPER vapi_fdw FROM regress_vapi_user;
DROP ROLE regress_vapi_user;
DROP SERVER good;

-- Changing a server option takes effect on the next query (the cached
-- handle is rebuilt): page_size shows in the requests sent.
\! python3 test/mockctl.py reset --count 30
ALTER SERVER vapi OPTIONS (ADD page_size '20');
SELECT count(*) FROM phone_numbers;
ALTER SERVER vapi OPTIONS (SET page_size '50');
SELECT count(*) FROM phone_numbers;
ALTER SERVER vapi OPTIONS (DROP page_size);
\! python3 test/mockctl.py requests --clear

--
-- monitor_backend: without vapi_fdw in shared_preload_libraries there is
-- no shared memory, so the statistics and the rate budget belong to each
-- backend: the view says so (scope 'backend') and shows this backend's
-- requests only, and a 429 holds only the backend that saw it.  Wait
-- events and the connection functions work the same.  (This file runs on
-- a server started without the library preloaded.)
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\! python3 test/mockctl.py reset --count 2500 --seed 1
SHOW shared_preload_libraries;
\i sql/monitor_setup.inc

-- this backend's requests only
SELECT * FROM vapi_fdw_stats;
SELECT count(*) FROM mon.phone_numbers;
SELECT server_name, scope, requests, requests_get, responses_2xx, rows_received
  FROM vapi_fdw_stats;
SELECT dblink_connect('b1', :'conninfo'), dblink_connect('b2', :'conninfo');
SELECT * FROM dblink('b1', 'SELECT count(*) FROM mon.phone_numbers') AS t(n bigint);
SELECT * FROM dblink('b1', 'SELECT scope, requests FROM vapi_fdw_stats') AS t(scope text, requests bigint);
SELECT server_name, scope, requests FROM vapi_fdw_stats;
SELECT vapi_fdw_stats_reset();
SELECT server_name, scope, requests FROM vapi_fdw_stats;
SELECT * FROM dblink('b1', 'SELECT scope, requests FROM vapi_fdw_stats') AS t(scope text, requests bigint);

-- the connection functions
SELECT server_name, user_name, handles, in_use, idle, valid FROM vapi_fdw_get_connections();
SELECT vapi_fdw_disconnect('mon');
SELECT * FROM vapi_fdw_get_connections();

-- a wait event, seen from another session
SELECT pid AS b1_pid FROM dblink('b1', 'SELECT pg_backend_pid()') AS t(pid int) \gset
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"latency","ms":3000}]'
SELECT dblink_send_query('b1', 'SELECT count(*) FROM mon.phone_numbers WHERE created_at >= ''2024-04-01''');
SELECT wait_for(:b1_pid, vapi_event('VapiFdwRequest')) = vapi_event('VapiFdwRequest') AS waits_for_answer;
SELECT * FROM dblink_get_result('b1') AS t(n bigint);
SELECT * FROM dblink_get_result('b1') AS t(n bigint);
\! python3 test/mockctl.py faults-clear

-- the rate budget of this backend: three requests at one per second
ALTER SERVER mon OPTIONS (SET page_size '100', ADD max_requests_per_second '1', ADD max_request_burst '1');
SELECT vapi_fdw_stats_reset();
SELECT count(*) FROM mon.phone_numbers WHERE created_at >= '2024-04-01';
SELECT requests, rate_waits, rate_wait_ms > 1500 AS waited_seconds FROM vapi_fdw_stats;
ALTER SERVER mon OPTIONS (SET page_size '500', DROP max_requests_per_second, DROP max_request_burst);

-- a 429 holds only the backend that saw it: b2 sends while b1 is held
\i sql/monitor_hold.inc

SELECT dblink_disconnect('b1'), dblink_disconnect('b2');
DROP SCHEMA mon CASCADE;
DROP USER MAPPING FOR CURRENT_USER SERVER mon;
DROP SERVER mon;
DROP EXTENSION dblink;

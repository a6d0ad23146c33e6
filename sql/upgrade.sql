--
-- upgrade: ALTER EXTENSION vapi_fdw UPDATE from 0.1 (no monitoring
-- objects) to the current version, in a database of its own; the foreign
-- tables made under 0.1 keep working, and the new objects are there.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
SELECT current_database() AS regress_db \gset
SET client_min_messages = warning;
DROP DATABASE IF EXISTS vapi_upgrade;
RESET client_min_messages;
CREATE DATABASE vapi_upgrade;
\c vapi_upgrade
-- the extension's objects (not the row type of its view, which \dx+
-- lists from PostgreSQL 17 on)
\set ext_objects 'SELECT pg_describe_object(classid, objid, 0) AS object FROM pg_depend WHERE refclassid = ''pg_extension''::regclass AND deptype = ''e'' AND refobjid = (SELECT oid FROM pg_extension WHERE extname = ''vapi_fdw'') AND classid <> ''pg_type''::regclass ORDER BY 1;'
CREATE EXTENSION vapi_fdw VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'vapi_fdw';
SELECT proname FROM pg_proc WHERE proname LIKE 'vapi_fdw%' ORDER BY 1;
CREATE SERVER vapi FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER vapi OPTIONS (api_key :'mock_key');
IMPORT FOREIGN SCHEMA vapi FROM SERVER vapi INTO public;
SELECT count(*) FROM phone_numbers WHERE created_at >= '2024-04-01';
SELECT * FROM vapi_fdw_stats;
ALTER EXTENSION vapi_fdw UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'vapi_fdw';
SELECT proname, pronargs, proretset FROM pg_proc WHERE proname LIKE 'vapi_fdw%' ORDER BY 1;
:ext_objects
SELECT count(*) FROM phone_numbers WHERE created_at >= '2024-04-01';
SELECT server_name, requests > 0 AS counted FROM vapi_fdw_stats;
SELECT server_name, handles > 0 AS open FROM vapi_fdw_get_connections();
-- the same objects as a fresh CREATE EXTENSION of the current version
DROP EXTENSION vapi_fdw CASCADE;
CREATE EXTENSION vapi_fdw;
SELECT extversion FROM pg_extension WHERE extname = 'vapi_fdw';
:ext_objects
ALTER EXTENSION vapi_fdw UPDATE TO '0.1';
\c :regress_db
DROP DATABASE vapi_upgrade;

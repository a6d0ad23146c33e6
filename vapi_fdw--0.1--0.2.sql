/* vapi_fdw--0.1--0.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION vapi_fdw UPDATE TO '0.2'" to load this file. \quit

-- Cumulative statistics of the requests sent to the API, per foreign
-- server and user of this database: of every backend since the last reset
-- when vapi_fdw is in shared_preload_libraries (scope 'cluster'), else of
-- the current backend only (scope 'backend').
CREATE FUNCTION vapi_fdw_stats(
    OUT server_name text,
    OUT user_name text,
    OUT scope text,
    OUT requests bigint,
    OUT requests_get bigint,
    OUT requests_post bigint,
    OUT requests_patch bigint,
    OUT requests_delete bigint,
    OUT responses_2xx bigint,
    OUT responses_4xx bigint,
    OUT responses_429 bigint,
    OUT responses_5xx bigint,
    OUT responses_other bigint,
    OUT transport_errors bigint,
    OUT timeouts bigint,
    OUT retries bigint,
    OUT backoff_ms double precision,
    OUT rate_waits bigint,
    OUT rate_wait_ms double precision,
    OUT bytes_received bigint,
    OUT bytes_sent bigint,
    OUT rows_received bigint,
    OUT latency_p50_ms double precision,
    OUT latency_p95_ms double precision,
    OUT latency_max_ms double precision,
    OUT latency_mean_ms double precision,
    OUT last_error_at timestamptz,
    OUT last_error_status integer,
    OUT last_error text,
    OUT stats_reset timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'vapi_fdw_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW vapi_fdw_stats AS SELECT * FROM vapi_fdw_stats();

GRANT SELECT ON vapi_fdw_stats TO PUBLIC;

-- Zero the statistics of one server of this database, or of all of them.
CREATE FUNCTION vapi_fdw_stats_reset(server_name text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'vapi_fdw_stats_reset'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION vapi_fdw_stats_reset(text) FROM PUBLIC;

-- This backend's connections to the API, as postgres_fdw has them.
CREATE FUNCTION vapi_fdw_get_connections(
    OUT server_name text,
    OUT user_name text,
    OUT handles integer,
    OUT in_use integer,
    OUT idle integer,
    OUT last_used timestamptz,
    OUT valid boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'vapi_fdw_get_connections'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION vapi_fdw_disconnect(text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'vapi_fdw_disconnect'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION vapi_fdw_disconnect_all()
RETURNS boolean
AS 'MODULE_PATHNAME', 'vapi_fdw_disconnect_all'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

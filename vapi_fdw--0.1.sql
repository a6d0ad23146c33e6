/* vapi_fdw--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION vapi_fdw" to load this file. \quit

CREATE FUNCTION vapi_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION vapi_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER vapi_fdw
  HANDLER vapi_fdw_handler
  VALIDATOR vapi_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER vapi_fdw
  IS 'phone numbers of a Vapi organisation as foreign tables';

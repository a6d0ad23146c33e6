--
-- setup: the objects every other test uses.
--
-- The mock's address and key come from the environment of the test run,
-- so that neither a port nor a key ever appears in an expected file.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY

-- The tests up to concurrency assert the exact requests of each query, in
-- the order they are sent, so their server sends one at a time, and they
-- scan with count(*), so it is not answered from the metadata; parallel.sql
-- tests the defaults (several requests at once, count from metadata), and
-- the differential test runs with them.
CREATE SERVER vapi FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'mock_url', max_concurrent_requests '1', count_pushdown 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER vapi
  OPTIONS (api_key :'mock_key');
IMPORT FOREIGN SCHEMA vapi FROM SERVER vapi INTO public;

-- explain(q, with_analyze, hide) shows a VERBOSE plan the same way on every
-- PostgreSQL major: no buffers, no row counts (fractional from 18 on), and
-- without the lines matching "hide", by default the output lists (a join
-- filter's operand order, window names, InitPlan names differ between
-- majors).
CREATE FUNCTION explain(q text, with_analyze boolean DEFAULT true, hide text DEFAULT 'Output:')
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (' ||
      CASE WHEN with_analyze THEN 'ANALYZE, TIMING OFF, SUMMARY OFF, BUFFERS OFF, '
           ELSE '' END || 'VERBOSE, COSTS OFF) ' || q
  LOOP
    CONTINUE WHEN line ~ hide OR line ~ '^\s*(Buffers|Planning):';
    RETURN NEXT regexp_replace(line, ' \(actual rows=[0-9.]+ loops=[0-9]+\)', '');
  END LOOP;
END $$;

SELECT extname, extversion FROM pg_extension WHERE extname = 'vapi_fdw';
SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc
  FROM pg_foreign_data_wrapper WHERE fdwname = 'vapi_fdw';
\d phone_numbers

--
-- pushdown: each query shape sends only the requests it needs (shown by
-- EXPLAIN VERBOSE and the mock's request log), and returns exactly the
-- rows the same query returns over a local copy of the data.
--
\! python3 test/mockctl.py reset --count 2500 --seed 1
SET TimeZone = 'UTC';
CREATE TABLE local_copy AS SELECT * FROM phone_numbers;

-- check_shape runs a query over the foreign table once (into a temporary
-- table) and over the local copy, and counts the rows in one but not the
-- other.  check_order compares the ordered values of a one-column query.
CREATE FUNCTION check_shape(q text, OUT rows bigint, OUT differences bigint)
LANGUAGE plpgsql AS $$
DECLARE
  lq text := replace(q, 'phone_numbers', 'local_copy');
BEGIN
  EXECUTE 'CREATE TEMP TABLE shape_result AS ' || q;
  SELECT count(*) INTO rows FROM shape_result;
  EXECUTE format('SELECT count(*) FROM ((TABLE shape_result EXCEPT ALL (%s))
                  UNION ALL ((%s) EXCEPT ALL TABLE shape_result)) d', lq, lq)
    INTO differences;
  DROP TABLE shape_result;
END $$;
CREATE FUNCTION check_order(q text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  f timestamptz[];
  l timestamptz[];
BEGIN
  EXECUTE format('SELECT array_agg(c) FROM (%s) s(c)', q) INTO f;
  EXECUTE format('SELECT array_agg(c) FROM (%s) s(c)',
                 replace(q, 'phone_numbers', 'local_copy')) INTO l;
  RETURN f IS NOT NULL AND f = l;
END $$;
\! python3 test/mockctl.py clear

--
-- Time ranges: created_at and updated_at with = < <= > >= and BETWEEN,
-- against timestamptz, timestamp and date values, become the createdAt*
-- and updatedAt* parameters.
--
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id FROM phone_numbers WHERE created_at > '2024-04-01 12:00:00+00';
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE created_at > '2024-04-01 12:00:00+00'$$);
\! python3 test/mockctl.py requests --clear

-- BETWEEN, a date in the session's time zone, and a timestamp
SET TimeZone = 'America/New_York';
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id FROM phone_numbers WHERE created_at BETWEEN '2024-02-01'::date AND '2024-02-03 06:30'::timestamp;
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE created_at BETWEEN '2024-02-01'::date AND '2024-02-03 06:30'::timestamp$$);
\! python3 test/mockctl.py requests --clear
SET TimeZone = 'UTC';

-- several bounds on one column combine to the tightest; the value may be
-- on either side; updated_at too
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id FROM phone_numbers
   WHERE created_at > '2024-02-01' AND '2024-02-10' < created_at AND created_at >= '2024-02-10'
     AND created_at < '2024-03-01' AND created_at <= '2024-02-20'
     AND updated_at >= '2024-03-01';
SELECT * FROM check_shape($$SELECT id FROM phone_numbers
   WHERE created_at > '2024-02-01' AND '2024-02-10' < created_at AND created_at >= '2024-02-10'
     AND created_at < '2024-03-01' AND created_at <= '2024-02-20'
     AND updated_at >= '2024-03-01'$$);
\! python3 test/mockctl.py requests --clear

-- equality, and sub-millisecond values rounded to the same rows
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE created_at = '2024-02-20 18:23:57+00'$$);
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE created_at >= '2024-04-10 17:40:59.6065+00' AND created_at < '2024-04-10 20:31:27.1385+00'$$);
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE created_at = '2024-04-10 17:40:59.6071+00'$$);
\! python3 test/mockctl.py requests --clear

-- a stable expression is evaluated when the scan starts
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id FROM phone_numbers WHERE created_at > '2024-04-10 12:00+00'::timestamptz - interval '1 day';
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE created_at > '2024-04-10 12:00+00'::timestamptz - interval '1 day'$$);
\! python3 test/mockctl.py requests --clear

-- now() - interval: evaluated at execution, once per execution
PREPARE recent AS SELECT count(*) FROM phone_numbers WHERE created_at > now() - interval '1 day';
EXECUTE recent;
SELECT pg_sleep(1.1);
EXECUTE recent;
CREATE TEMP TABLE sent (line text);
\copy sent FROM PROGRAM 'python3 test/mockctl.py requests --clear'
SELECT count(*) AS requests,
       count(DISTINCT v) AS distinct_values,
       bool_and(v::timestamptz BETWEEN now() - interval '1 day' - interval '1 minute'
                                   AND now() - interval '1 day' + interval '1 minute') AS near_now
  FROM (SELECT replace(substring(line from 'createdAtGe=([^&]*)'), '%3A', ':') AS v FROM sent) s;
DEALLOCATE recent;

-- a parameter of a prepared statement, with a generic plan
SET plan_cache_mode = force_generic_plan;
PREPARE since(timestamptz) AS SELECT id FROM phone_numbers WHERE created_at >= $1;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE since('2024-04-09 00:00+00');
EXECUTE since('2024-04-09 00:00+00') \g /dev/null
EXECUTE since('2024-04-10 00:00+00') \g /dev/null
\! python3 test/mockctl.py requests --clear
DEALLOCATE since;
RESET plan_cache_mode;

-- what cannot be pushed stays local, and the answer is still right
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id FROM phone_numbers
   WHERE (created_at > '2024-04-01' OR name = 'Line 00100')
     AND date_trunc('day', updated_at) = '2024-05-01'
     AND created_at > now() - random() * interval '1000 days';
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE created_at > '2024-04-01' OR name = 'Line 00100'$$);
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE date_trunc('day', updated_at) = '2024-05-01'$$);
\! python3 test/mockctl.py requests --clear
-- a NULL bound admits no row: nothing is sent
SELECT count(*) FROM phone_numbers WHERE created_at > NULL::timestamptz;
\! python3 test/mockctl.py count

--
-- Lookups by id.
--
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id, number FROM phone_numbers WHERE id = 'ba55ba19-26d0-4e7a-ac7c-d3a03c07a3ea';
SELECT id, number, provider FROM phone_numbers WHERE id = 'ba55ba19-26d0-4e7a-ac7c-d3a03c07a3ea';
-- an id that does not exist is no row, not an error
SELECT id FROM phone_numbers WHERE id = '00000000-0000-4000-8000-00000000dead';
-- other quals are checked on the row
SELECT id FROM phone_numbers WHERE id = 'ba55ba19-26d0-4e7a-ac7c-d3a03c07a3ea' AND provider = 'twilio';
\! python3 test/mockctl.py requests --clear
-- IN / = ANY: one request per distinct id
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id FROM phone_numbers
   WHERE id IN ('ba55ba19-26d0-4e7a-ac7c-d3a03c07a3ea', '2bf888ec-2b89-4219-aeb6-d064430d2694',
                'ba55ba19-26d0-4e7a-ac7c-d3a03c07a3ea', '00000000-0000-4000-8000-00000000dead');
SELECT * FROM check_shape($$SELECT id FROM phone_numbers
   WHERE id IN ('ba55ba19-26d0-4e7a-ac7c-d3a03c07a3ea', '2bf888ec-2b89-4219-aeb6-d064430d2694',
                'ba55ba19-26d0-4e7a-ac7c-d3a03c07a3ea', '00000000-0000-4000-8000-00000000dead')$$);
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE id = ANY(ARRAY['2bf888ec-2b89-4219-aeb6-d064430d2694'::uuid, NULL])$$);
\! python3 test/mockctl.py requests --clear
-- a parameter
PREPARE one(uuid) AS SELECT number FROM phone_numbers WHERE id = $1;
EXECUTE one('2bf888ec-2b89-4219-aeb6-d064430d2694');
\! python3 test/mockctl.py requests --clear
DEALLOCATE one;
-- with a text id column, a value that is not a UUID never reaches a URL
CREATE FOREIGN TABLE numbers_text_id (id text, number text) SERVER vapi;
SELECT * FROM numbers_text_id WHERE id = '../v2/phone-number?limit=1';
-- the same id in two cases is one lookup and one row (a local table would
-- return the row once: only the lower-case id equals the row's id)
SELECT * FROM numbers_text_id WHERE id IN ('x', '2bf888ec-2b89-4219-aeb6-d064430d2694', '2BF888EC-2B89-4219-AEB6-D064430D2694');
\! python3 test/mockctl.py requests --clear
SELECT * FROM numbers_text_id WHERE id = '2BF888EC-2B89-4219-AEB6-D064430D2694';
\! python3 test/mockctl.py requests --clear
DROP FOREIGN TABLE numbers_text_id;

--
-- ANALYZE reads the table once; the planner then knows its size.
--
ANALYZE phone_numbers;
SELECT reltuples FROM pg_class WHERE oid = 'phone_numbers'::regclass;
\! python3 test/mockctl.py count
\! python3 test/mockctl.py clear
-- planning sends nothing
EXPLAIN (COSTS OFF) SELECT * FROM phone_numbers WHERE created_at > now() - interval '1 day';
EXPLAIN (COSTS OFF) SELECT * FROM phone_numbers WHERE id = '2bf888ec-2b89-4219-aeb6-d064430d2694';
\! python3 test/mockctl.py count
-- row estimates per path
CREATE FUNCTION estimated_rows(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN ' || q LOOP
    IF line ~ 'Foreign Scan' THEN
      RETURN substring(line from 'rows=(\d+)');
    END IF;
  END LOOP;
  RETURN NULL;
END $$;
SELECT estimated_rows('SELECT * FROM phone_numbers') AS full_scan,
       estimated_rows($$SELECT * FROM phone_numbers WHERE created_at > '2024-04-01'$$) AS time_range,
       estimated_rows($$SELECT * FROM phone_numbers WHERE id = '2bf888ec-2b89-4219-aeb6-d064430d2694'$$) AS one_id,
       estimated_rows($$SELECT * FROM phone_numbers WHERE id IN ('2bf888ec-2b89-4219-aeb6-d064430d2694', 'ba55ba19-26d0-4e7a-ac7c-d3a03c07a3ea')$$) AS two_ids;

--
-- Joins on id: a small outer side uses one lookup per row, a large one
-- a single scan and a hash join.
--
CREATE TABLE crm_small AS
  SELECT 'Account ' || n AS account, id AS vapi_id
    FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM local_copy) s
   WHERE n % 500 = 1;
INSERT INTO crm_small VALUES ('Gone', '00000000-0000-4000-8000-00000000dead');
CREATE TABLE crm_large AS
  SELECT 'Account ' || n AS account, id AS vapi_id
    FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM local_copy) s
   WHERE n % 5 = 1;
ANALYZE crm_small, crm_large;
SELECT * FROM explain('SELECT c.account, p.number FROM crm_small c JOIN phone_numbers p ON p.id = c.vapi_id',
                       false, 'Filter:|Output:');
SELECT * FROM check_shape($$SELECT c.account, p.number FROM crm_small c JOIN phone_numbers p ON p.id = c.vapi_id$$);
\! python3 test/mockctl.py requests --clear
SELECT * FROM explain('SELECT c.account, p.number FROM crm_small c JOIN phone_numbers p ON p.id = c.vapi_id',
                       true, 'Filter:|Output:');
\! python3 test/mockctl.py clear
EXPLAIN (COSTS OFF)
  SELECT c.account, p.number FROM crm_large c JOIN phone_numbers p ON p.id = c.vapi_id;
SELECT * FROM check_shape($$SELECT c.account, p.number FROM crm_large c JOIN phone_numbers p ON p.id = c.vapi_id$$);
\! python3 test/mockctl.py requests --clear

--
-- ORDER BY created_at is the API's order; a LIMIT is sent only when it is
-- provably the number of rows needed.
--
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT id, created_at FROM phone_numbers ORDER BY created_at DESC LIMIT 10;
SELECT check_order('SELECT created_at FROM phone_numbers ORDER BY created_at DESC LIMIT 10');
\! python3 test/mockctl.py requests --clear
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT created_at FROM phone_numbers ORDER BY created_at LIMIT 5 OFFSET 3;
SELECT check_order('SELECT created_at FROM phone_numbers ORDER BY created_at LIMIT 5 OFFSET 3');
\! python3 test/mockctl.py requests --clear
-- a time range, the order and the limit together
SELECT check_order($$SELECT created_at FROM phone_numbers WHERE created_at < '2024-03-01' ORDER BY created_at DESC LIMIT 1200$$);
\! python3 test/mockctl.py requests --clear
-- no ORDER BY: any rows will do, and the LIMIT is still sent
SELECT count(*) FROM (SELECT id FROM phone_numbers LIMIT 3) s;
\! python3 test/mockctl.py requests --clear
-- the order alone, in both directions (the whole table, sorted by the API)
SELECT check_order('SELECT created_at FROM phone_numbers ORDER BY created_at');
SELECT check_order('SELECT created_at FROM phone_numbers ORDER BY created_at DESC');
\! python3 test/mockctl.py requests --clear

-- Each of these keeps its LIMIT local (the scan reads every page it needs).
-- a local-only filter
EXPLAIN (VERBOSE, COSTS OFF)
  SELECT created_at FROM phone_numbers WHERE status = 'blocked' ORDER BY created_at DESC LIMIT 5;
SELECT check_order($$SELECT created_at FROM phone_numbers WHERE status = 'blocked' ORDER BY created_at DESC LIMIT 5$$);
-- a search prefilter (it matches a superset)
SELECT check_order($$SELECT created_at FROM phone_numbers WHERE name LIKE '%7%' ORDER BY created_at LIMIT 5$$);
\! python3 test/mockctl.py requests --clear
-- an order the API cannot give, aggregates, DISTINCT, window functions,
-- locking, WITH TIES, a join, a parameter
EXPLAIN (VERBOSE, COSTS OFF) SELECT name FROM phone_numbers ORDER BY name LIMIT 3;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM phone_numbers LIMIT 1;
EXPLAIN (VERBOSE, COSTS OFF) SELECT DISTINCT provider FROM phone_numbers LIMIT 2;
SELECT * FROM explain('SELECT id, row_number() OVER () FROM phone_numbers LIMIT 3', false, 'Output:|Window:');
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM phone_numbers LIMIT 3 FOR UPDATE;
EXPLAIN (VERBOSE, COSTS OFF) SELECT created_at FROM phone_numbers ORDER BY created_at FETCH FIRST 2 ROWS WITH TIES;
EXPLAIN (VERBOSE, COSTS OFF) SELECT p.id FROM phone_numbers p, crm_small c LIMIT 2;
PREPARE lim(int) AS SELECT id FROM phone_numbers LIMIT $1;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE lim(2);
DEALLOCATE lim;
SELECT count(*) FROM (SELECT created_at FROM phone_numbers ORDER BY created_at FETCH FIRST 2 ROWS WITH TIES) s;
\! python3 test/mockctl.py clear

--
-- Search: name and number equality, LIKE and ILIKE use the v2 search
-- parameter as a prefilter, re-checked locally.
--
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM phone_numbers WHERE name = 'Line 00100';
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE name = 'Line 00100'$$);
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE name LIKE 'Line 001%'$$);
-- non-ASCII is not sent: the API folds case its own way (the filter is local)
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE name ILIKE '%zürich%'$$);
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE number LIKE '+1415%'$$);
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE name LIKE 'Line 00_2%' AND number LIKE '%55%'$$);
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE name LIKE 'Front "Desk" \\ Annex'$$);
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE name LIKE '%'$$);
SELECT * FROM check_shape($$SELECT id FROM phone_numbers WHERE sip_uri ILIKE 'SIP:LINE1%'$$);
\! python3 test/mockctl.py requests --clear

DROP FUNCTION check_shape, check_order, estimated_rows;
DROP TABLE local_copy, crm_small, crm_large, sent;
RESET TimeZone;

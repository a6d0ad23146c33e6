--
-- defects: wrong answers, lost data and misleading errors found by trying
-- SQL shapes the other tests never took.  Each case is compared with the
-- mock's own data or a local copy, and checks the requests sent.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\! python3 test/mockctl.py reset --count 2500 --seed 1
SET TimeZone = 'UTC';
CREATE SERVER small FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'mock_url', page_size '100', max_concurrent_requests '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER small OPTIONS (api_key :'mock_key');
CREATE FOREIGN TABLE small_numbers (id uuid, name text, created_at timestamptz)
  SERVER small;
CREATE TABLE local_copy AS SELECT id, name, created_at FROM phone_numbers;

-- explain_lines runs EXPLAIN ANALYZE and keeps the lines matching a pattern,
-- so that only what a case asserts is in the expected output.
CREATE FUNCTION explain_lines(q text, pattern text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q
  LOOP
    IF line ~ pattern THEN
      RETURN NEXT btrim(line);
    END IF;
  END LOOP;
END $$;

--
-- An ascending scan with a lower bound, over many pages: the request sent
-- in advance for page 2 was built from a stale bound and repeated page 1
-- ("paging made no progress"), or returned it twice after a deletion.
--
SELECT created_at AS lo FROM local_copy ORDER BY created_at OFFSET 300 LIMIT 1 \gset
\! python3 test/mockctl.py clear
SELECT count(*) AS rows, count(DISTINCT id) AS ids
  FROM (SELECT id FROM small_numbers WHERE created_at >= :'lo' ORDER BY created_at) s;
-- 23 pages, no request sent twice
\! python3 test/mockctl.py requests --clear | sort | uniq | wc -l
\! python3 test/mockctl.py requests --clear | sort | uniq -d | wc -l
SELECT count(*) AS expected FROM local_copy WHERE created_at >= :'lo';
SELECT (SELECT array_agg(created_at) FROM
          (SELECT created_at FROM small_numbers WHERE created_at >= :'lo' ORDER BY created_at) f)
     = (SELECT array_agg(created_at ORDER BY created_at) FROM local_copy WHERE created_at >= :'lo')
       AS same_order;
-- numbers deleted between pages: none twice, none that existed throughout missing
\! python3 test/mockctl.py mutate '[{"before_list_request":3,"create":0,"delete":4,"at":"middle"},{"before_list_request":6,"create":3,"delete":3,"at":"newest"}]'
CREATE TEMP TABLE during AS
  SELECT id FROM small_numbers WHERE created_at >= :'lo' ORDER BY created_at;
\! python3 test/mockctl.py mutations-clear
CREATE TEMP TABLE after AS SELECT id FROM phone_numbers;
SELECT count(*) - count(DISTINCT id) AS duplicates FROM during;
SELECT count(*) AS missing
  FROM (SELECT id FROM local_copy WHERE created_at >= :'lo'
        INTERSECT SELECT id FROM after EXCEPT SELECT id FROM during) m;
SELECT count(*) AS invented
  FROM (SELECT id FROM during EXCEPT (SELECT id FROM local_copy UNION SELECT id FROM after)) i;

-- A run of equal createdAt that fills the first page (12 numbers at one
-- instant, pages of 5), both ways.
\! python3 test/mockctl.py reset --count 0
\! python3 -c 'import json,subprocess; mk=lambda i,t: {"id":"00000000-0000-4000-8000-%012d" % i,"orgId":"o","provider":"vapi","name":"n%02d" % i,"createdAt":t,"updatedAt":t}; objs=[mk(i,"2024-05-01T00:00:00.000Z") for i in range(1,13)]+[mk(20+i,"2024-04-0%dT00:00:00.000Z" % i) for i in range(1,4)]+[mk(30+i,"2024-06-0%dT00:00:00.000Z" % i) for i in range(1,4)]; subprocess.run(["python3","test/mockctl.py","put",json.dumps(objs)],check=True)'
ALTER SERVER small OPTIONS (SET page_size '5');
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM small_numbers;
SELECT count(*) AS rows, count(DISTINCT id) AS ids,
       bool_and(created_at = '2024-05-01') AS run_only
  FROM small_numbers WHERE created_at >= '2024-05-01' AND created_at < '2024-05-02';
SELECT count(*) AS rows, count(DISTINCT id) AS ids
  FROM (SELECT id FROM small_numbers ORDER BY created_at) s;
SELECT string_agg(name, ',') FROM (SELECT name FROM small_numbers ORDER BY created_at DESC) s
 WHERE name > 'n2';
SELECT count(*) AS rows, count(DISTINCT id) AS ids
  FROM (SELECT id FROM small_numbers WHERE created_at >= '2024-05-01' ORDER BY created_at) s;
\! python3 test/mockctl.py requests --clear | grep -c 'page=2'
ALTER SERVER small OPTIONS (SET page_size '100');

--
-- UPDATE of a dotted key on a table declaring neither the parent object
-- nor attrs: it sent {"server":{"url":...}} and wiped the object's other
-- fields (headers with the webhook secret, timeoutSeconds).
--
\! python3 test/mockctl.py put '[{"id":"00000000-0000-4000-8000-00000000a001","orgId":"o","provider":"vapi","number":"+14155550901","name":"hooked","createdAt":"2024-07-01T00:00:00.000Z","updatedAt":"2024-07-01T00:00:00.000Z","server":{"url":"https://old.example.com/hook","timeoutSeconds":20,"headers":{"X-Hook-Secret":"hook-secret-0000"}}}]'
CREATE FOREIGN TABLE url_only (id uuid, name text, server_url text OPTIONS (key 'server.url'))
  SERVER vapi;
UPDATE url_only SET server_url = 'https://new.example.com/hook'
 WHERE id = '00000000-0000-4000-8000-00000000a001';
\! python3 test/mockctl.py requests --body --clear
\! python3 test/mockctl.py get 00000000-0000-4000-8000-00000000a001 | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["server"], sort_keys=True))'
-- found by a list scan: the object comes from the page, no extra request
UPDATE url_only SET server_url = 'https://newer.example.com/hook' WHERE name = 'hooked';
\! python3 test/mockctl.py requests --body --clear | sed 's/&createdAt.*//'
-- the parent object and a path into it, set together
CREATE FOREIGN TABLE url_and_server (id uuid, server jsonb, server_url text OPTIONS (key 'server.url'))
  SERVER vapi;
UPDATE url_and_server SET server = '{"timeoutSeconds": 5}', server_url = 'https://both.example.com'
 WHERE id = '00000000-0000-4000-8000-00000000a001';
\! python3 test/mockctl.py requests --body --clear
DROP FOREIGN TABLE url_only, url_and_server;

--
-- A column whose type rounds the API's value (timestamptz(0)): a pushed
-- bound used the raw milliseconds, the local filter the rounded value, so
-- "=" found nothing for a row the table shows.
--
\! python3 test/mockctl.py reset --count 2500 --seed 1
CREATE FOREIGN TABLE rounded (id uuid, created_at timestamptz(0), updated_at timestamptz(3))
  SERVER vapi;
CREATE TABLE rounded_copy AS SELECT * FROM rounded;
SELECT created_at AS r FROM rounded_copy
 WHERE created_at <> (SELECT created_at FROM local_copy l WHERE l.id = rounded_copy.id)
 ORDER BY id LIMIT 1 \gset
SELECT (SELECT count(*) FROM rounded WHERE created_at = :'r') AS foreign_rows,
       (SELECT count(*) FROM rounded_copy WHERE created_at = :'r') AS local_rows;
SELECT (SELECT count(*) FROM rounded WHERE created_at < :'r') AS foreign_rows,
       (SELECT count(*) FROM rounded_copy WHERE created_at < :'r') AS local_rows;
SELECT (SELECT count(*) FROM rounded WHERE updated_at >= :'r') AS foreign_rows,
       (SELECT count(*) FROM rounded_copy WHERE updated_at >= :'r') AS local_rows;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM rounded WHERE created_at = '2024-03-01 12:00:00';
DROP FOREIGN TABLE rounded;
DROP TABLE rounded_copy;

--
-- JSON kept exactly, as PostgreSQL's own ::jsonb keeps it: integers beyond
-- 64 bits, deep nesting, surrogates, U+0000.
--
\! python3 test/mockctl.py reset --count 0
\! python3 -c 'import json,subprocess; d=1; exec("for _ in range(45): d=[d]"); o={"id":"00000000-0000-4000-8000-00000000b001","orgId":"o","provider":"vapi","createdAt":"2024-08-01T00:00:00.000Z","updatedAt":"2024-08-01T00:00:00.000Z","big":12345678901234567890123,"neg":-98765432109876543210,"u64":18446744073709551615,"i64":9223372036854775807,"frac":1.50,"tiny":1e-7,"deep":d,"name":"Zürich \u00e9t\u00e9 \U0001F600"}; subprocess.run(["python3","test/mockctl.py","put",json.dumps(o)],check=True)'
CREATE FOREIGN TABLE exact (id uuid, big numeric, big_text text OPTIONS (key 'big'),
  neg numeric, u64 text, i64 bigint, frac text, tiny text, deep jsonb, name text, attrs jsonb)
  SERVER vapi;
SELECT big, big_text, neg, u64, i64, frac, tiny, jsonb_typeof(deep) AS deep, name FROM exact;
-- non-ASCII text as raw UTF-8, in a list page above and in a by-id answer
-- here (validated by PostgreSQL's own JSON lexer, the same with any json-c)
SELECT name FROM exact WHERE id = '00000000-0000-4000-8000-00000000b001';
\set raw `python3 test/mockctl.py get 00000000-0000-4000-8000-00000000b001`
SELECT attrs = :'raw'::jsonb AS attrs_equal_jsonb, attrs->'big' AS big, attrs->'u64' AS u64,
       attrs #> '{deep,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}' AS innermost
  FROM exact;
-- a page whose JSON is nested deeper than 10000 levels is refused, clearly
\! python3 -c 'import json,subprocess; t="{\"results\":[{\"id\":\"00000000-0000-4000-8000-00000000b002\",\"createdAt\":\"2024-08-01T00:00:00.000Z\",\"x\":"+"["*10001+"]"*10001+"}],\"metadata\":{\"hasNextPage\":false}}"; subprocess.run(["python3","test/mockctl.py","fault",json.dumps([{"match":"GET /v2/phone-number","kind":"body","text":t}])],check=True)'
SELECT count(*) FROM exact;
\! python3 test/mockctl.py faults-clear
-- surrogate pairs decode; a lone surrogate is an error, as in PostgreSQL
\! python3 test/mockctl.py fault '[{"match":"GET /phone-number/","kind":"body","text":"{\"id\":\"00000000-0000-4000-8000-00000000b001\",\"name\":\"smile \\ud83d\\ude00\"}"}]'
SELECT name FROM exact WHERE id = '00000000-0000-4000-8000-00000000b001';
\! python3 test/mockctl.py fault '[{"match":"GET /phone-number/","kind":"body","text":"{\"id\":\"00000000-0000-4000-8000-00000000b001\",\"name\":\"lone \\ud800 surrogate\"}"}]'
SELECT name FROM exact WHERE id = '00000000-0000-4000-8000-00000000b001';
\! python3 test/mockctl.py fault '[{"match":"GET /phone-number/","kind":"body","text":"{\"id\":\"00000000-0000-4000-8000-00000000b001\",\"name\":\"lone \\udc00 low\"}"}]'
SELECT name FROM exact WHERE id = '00000000-0000-4000-8000-00000000b001';
-- U+0000 cannot be text: an error where it is read, and only there
\! python3 test/mockctl.py fault '[{"match":"GET /phone-number/","kind":"body","text":"{\"id\":\"00000000-0000-4000-8000-00000000b001\",\"name\":\"nul \\u0000 inside\"}","times":2}]'
SELECT id FROM exact WHERE id = '00000000-0000-4000-8000-00000000b001';
SELECT name FROM exact WHERE id = '00000000-0000-4000-8000-00000000b001';
\! python3 test/mockctl.py faults-clear
DROP FOREIGN TABLE exact;

--
-- An error after changes at Vapi says what was applied: a DELETE or an
-- INSERT ... SELECT whose scan fails on a later page.
--
\! python3 test/mockctl.py reset --count 250 --seed 3
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":400,"skip":1,"times":1}]'
DELETE FROM small_numbers;
\! python3 test/mockctl.py faults-clear
\! python3 test/mockctl.py count --match DELETE
SELECT count(*) AS left FROM phone_numbers;
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":400,"skip":1,"times":1}]'
INSERT INTO phone_numbers (provider, number_desired_area_code)
  SELECT 'vapi', '415' FROM small_numbers;
\! python3 test/mockctl.py faults-clear
\! python3 test/mockctl.py count --match POST
SELECT count(*) AS now FROM phone_numbers;

--
-- UPDATE ... FROM with a join row repeated: a local table updates the row
-- once, and so must the foreign table (it sent two PATCHes, and counted 2).
--
\! python3 test/mockctl.py reset --count 2500 --seed 1
CREATE TABLE dup AS
  SELECT id FROM (SELECT id FROM local_copy ORDER BY id LIMIT 3) s, generate_series(1, 2);
\! python3 test/mockctl.py clear
UPDATE phone_numbers p SET name = 'dup' FROM dup d WHERE p.id = d.id;
UPDATE local_copy p SET name = 'dup' FROM dup d WHERE p.id = d.id;
\! python3 test/mockctl.py count --match PATCH
DELETE FROM phone_numbers p USING dup d WHERE p.id = d.id;
DELETE FROM local_copy p USING dup d WHERE p.id = d.id;
\! python3 test/mockctl.py count --match DELETE
DROP TABLE dup;

--
-- EXPLAIN ANALYZE counts a request sent in advance and then abandoned;
-- a LIMIT that is not a constant sends none in advance.
--
\! python3 test/mockctl.py reset --count 2500 --seed 1
SELECT * FROM explain_lines('SELECT EXISTS (SELECT 1 FROM phone_numbers)', 'Vapi (Requests|Pages)');
PREPARE lim(int) AS SELECT id FROM phone_numbers LIMIT $1;
SELECT * FROM explain_lines('EXECUTE lim(1500)', 'Vapi (Requests|Pages)');
DEALLOCATE lim;
-- a bound known only at run time (an InitPlan) is shown as where it comes
-- from, not percent-encoded
SELECT regexp_replace(e, '=\$\(.*\)$', '=$(the InitPlan''s value)') AS plan
  FROM explain('SELECT id FROM phone_numbers WHERE created_at > (SELECT max(created_at) - interval ''1 day'' FROM local_copy)',
               false, '^(?!.*(Vapi|Scan))') e;
SELECT count(*) AS shown_as_its_source
  FROM explain('SELECT id FROM phone_numbers WHERE created_at > (SELECT max(created_at) - interval ''1 day'' FROM local_copy)', false) e
 WHERE e ~ 'createdAtGe=\$\(.+\)' AND e !~ '%24';
-- EXPLAIN (FORMAT JSON) gives "Vapi Request" as a list, with or without ANALYZE
CREATE FUNCTION request_shape(q text, with_analyze boolean) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  plan jsonb;
BEGIN
  EXECUTE format('EXPLAIN (ANALYZE %s, VERBOSE, FORMAT JSON, COSTS OFF) %s',
                 CASE WHEN with_analyze THEN 'true' ELSE 'false' END, q) INTO plan;
  RETURN jsonb_typeof(jsonb_path_query_first(plan, 'strict $.**."Vapi Request"'));
END $$;
SELECT request_shape('SELECT id FROM phone_numbers WHERE id = ''2bf888ec-2b89-4219-aeb6-d064430d2694''', false) AS plain,
       request_shape('SELECT id FROM phone_numbers WHERE id = ''2bf888ec-2b89-4219-aeb6-d064430d2694''', true) AS analyzed,
       request_shape('SELECT id FROM phone_numbers LIMIT 1', true) AS list_analyzed;

--
-- A Retry-After longer than statement_timeout says why it was not waited
-- for, whatever the status.
--
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"status","status":503,"retry_after":"30","times":1}]'
SET statement_timeout = '5s';
SELECT count(*) FROM phone_numbers;
RESET statement_timeout;
\! python3 test/mockctl.py faults-clear

--
-- A secret holding a quote or a backslash is redacted when the API echoes
-- the request body as JSON text.
--
\! python3 test/mockctl.py fault '[{"match":"POST /phone-number","kind":"status","status":400,"message":"body {\"twilioAuthToken\":\"tok\\\"en\\\\secret-0001\"} rejected; raw tok\"en\\secret-0001"}]'
INSERT INTO phone_numbers (provider, number, twilio_account_sid, twilio_auth_token)
  VALUES ('twilio', '+14155550777', 'AC0123456789abcdef0123456789abcdef', E'tok"en\\secret-0001');
\! python3 test/mockctl.py faults-clear

--
-- INSERT ... ON CONFLICT DO NOTHING cannot detect a conflict: refused,
-- nothing sent.
--
\! python3 test/mockctl.py clear
INSERT INTO phone_numbers (provider, number_desired_area_code) VALUES ('vapi', '415')
  ON CONFLICT DO NOTHING;
\! python3 test/mockctl.py count

--
-- A stored generated column is computed locally and never sent.
--
CREATE FOREIGN TABLE gen_numbers (id uuid, provider text, number_desired_area_code text,
  name text, name_upper text GENERATED ALWAYS AS (upper(name)) STORED) SERVER vapi;
INSERT INTO gen_numbers (provider, number_desired_area_code, name)
  VALUES ('vapi', '415', 'generated') RETURNING name, name_upper, id IS NOT NULL AS has_id;
\! python3 test/mockctl.py requests --body --clear
UPDATE gen_numbers SET name = 'changed' WHERE name = 'generated' RETURNING name, name_upper;
\! python3 test/mockctl.py requests --body --clear | grep PATCH | sed 's/[0-9a-f-]\{36\}/<id>/'
DROP FOREIGN TABLE gen_numbers;

--
-- A domain over jsonb is read like jsonb, and its constraint is checked.
--
CREATE DOMAIN server_object AS jsonb CHECK (jsonb_typeof(VALUE) = 'object');
CREATE DOMAIN hooked_server AS jsonb CHECK (VALUE ? 'url');
CREATE FOREIGN TABLE dom_numbers (id uuid, server server_object, fallback_destination server_object)
  SERVER vapi;
SELECT count(*) AS servers, bool_and(server ? 'url') AS all_have_url
  FROM dom_numbers WHERE server IS NOT NULL;
CREATE FOREIGN TABLE dom_strict (id uuid, server hooked_server) SERVER vapi;
\! python3 test/mockctl.py put '[{"id":"00000000-0000-4000-8000-00000000c001","orgId":"o","provider":"vapi","createdAt":"2024-09-01T00:00:00.000Z","updatedAt":"2024-09-01T00:00:00.000Z","server":{"timeoutSeconds":5}}]'
SELECT server FROM dom_strict WHERE id = '00000000-0000-4000-8000-00000000c001';
DROP FOREIGN TABLE dom_numbers, dom_strict;
DROP DOMAIN server_object, hooked_server;

\! python3 test/mockctl.py reset --count 2500 --seed 1
DROP TABLE local_copy;
DROP FUNCTION explain_lines(text, text), request_shape(text, boolean);
DROP SERVER small CASCADE;

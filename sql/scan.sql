--
-- scan: a full scan returns every phone number of the organisation exactly
-- once, with values equal to the API's data, in as few requests as the page
-- size allows, over one kept-alive connection.
--
\! python3 test/mockctl.py reset --count 2500 --seed 1

SELECT count(*), count(DISTINCT id) FROM phone_numbers;
-- three pages of 1000: the second and third start at the oldest createdAt
-- of the page before (keyset paging)
\! python3 test/mockctl.py requests --clear

-- The same data as the API holds, column by column.  The oracle is the
-- mock's own dump, parsed by PostgreSQL's JSON parser.
CREATE TEMP TABLE mock_raw (j jsonb);
\copy mock_raw FROM PROGRAM 'python3 test/mockctl.py dump' WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')
SELECT count(*) FROM mock_raw;
CREATE TEMP TABLE copy AS SELECT * FROM phone_numbers;

SELECT count(*) AS missing_or_extra
  FROM copy p FULL JOIN mock_raw m ON p.id = (m.j->>'id')::uuid
 WHERE p.id IS NULL OR m.j IS NULL;

CREATE FUNCTION jnull(jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
  AS $$ SELECT NULLIF($1, 'null'::jsonb) $$;
SELECT count(*) AS mismatches
  FROM copy p JOIN mock_raw m ON p.id = (m.j->>'id')::uuid
 WHERE p.org_id IS DISTINCT FROM m.j->>'orgId'
    OR p.provider IS DISTINCT FROM m.j->>'provider'
    OR p.number IS DISTINCT FROM m.j->>'number'
    OR p.name IS DISTINCT FROM m.j->>'name'
    OR p.status IS DISTINCT FROM m.j->>'status'
    OR p.assistant_id IS DISTINCT FROM m.j->>'assistantId'
    OR p.squad_id IS DISTINCT FROM m.j->>'squadId'
    OR p.workflow_id IS DISTINCT FROM m.j->>'workflowId'
    OR p.credential_id IS DISTINCT FROM m.j->>'credentialId'
    OR p.number_e164_check_enabled IS DISTINCT FROM (m.j->>'numberE164CheckEnabled')::boolean
    OR p.sms_enabled IS DISTINCT FROM (m.j->>'smsEnabled')::boolean
    OR p.twilio_account_sid IS DISTINCT FROM m.j->>'twilioAccountSid'
    OR p.twilio_auth_token IS DISTINCT FROM m.j->>'twilioAuthToken'
    OR p.twilio_api_key IS DISTINCT FROM m.j->>'twilioApiKey'
    OR p.twilio_api_secret IS DISTINCT FROM m.j->>'twilioApiSecret'
    OR p.number_desired_area_code IS DISTINCT FROM m.j->>'numberDesiredAreaCode'
    OR p.sip_uri IS DISTINCT FROM m.j->>'sipUri'
    OR p.authentication IS DISTINCT FROM jnull(m.j->'authentication')
    OR p.server IS DISTINCT FROM jnull(m.j->'server')
    OR p.server_url IS DISTINCT FROM m.j#>>'{server,url}'
    OR p.fallback_destination IS DISTINCT FROM jnull(m.j->'fallbackDestination')
    OR p.hooks IS DISTINCT FROM jnull(m.j->'hooks')
    OR p.created_at IS DISTINCT FROM (m.j->>'createdAt')::timestamptz
    OR p.updated_at IS DISTINCT FROM (m.j->>'updatedAt')::timestamptz
    OR p.attrs IS DISTINCT FROM
       (m.j - 'twilioAuthToken' - 'twilioApiSecret') #- '{authentication,password}';

-- The data set exercises what it should: every provider, an unknown one,
-- absent and null fields, non-ASCII text, both timestamp forms, ties.
SELECT provider, count(*) FROM copy GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE m.j ? 'name' AND m.j->'name' = 'null') AS null_names,
       count(*) FILTER (WHERE NOT m.j ? 'name') AS absent_names,
       count(*) FILTER (WHERE m.j->>'createdAt' NOT LIKE '%.___Z') AS whole_second_ts,
       count(*) FILTER (WHERE m.j ? 'someFutureField') AS unknown_field
  FROM mock_raw m;
SELECT count(*) AS rows_sharing_a_created_at
  FROM (SELECT created_at FROM copy GROUP BY 1 HAVING count(*) > 1) t;
SELECT count(*) FROM copy WHERE name ~ '[^\x01-\x7f]';

-- Secrets are never in attrs.
SELECT count(*) FROM copy
 WHERE attrs ? 'twilioAuthToken' OR attrs ? 'twilioApiSecret'
    OR attrs->'authentication' ? 'password';
SELECT count(*) FROM copy WHERE twilio_auth_token IS NOT NULL;
SELECT count(*) FROM copy WHERE authentication ? 'password';

-- The five newest numbers, as typed rows.
SELECT id, provider, number, name, status, created_at
  FROM phone_numbers ORDER BY created_at DESC, id LIMIT 5;

-- Keep-alive: the queries of this session used one TCP connection, and
-- every request carried the key and our User-Agent.
SELECT count(*) FROM phone_numbers WHERE provider = 'vapi';
\! python3 test/mockctl.py requests --conn --headers --clear

-- EXPLAIN VERBOSE shows the request; ANALYZE what was done.
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, number FROM phone_numbers;
SELECT * FROM explain('SELECT count(*) FROM phone_numbers');
\! python3 test/mockctl.py clear

-- A subset of the columns, in any order, and quals evaluated locally.
SELECT number, provider FROM phone_numbers
 WHERE name = 'Line 00042' OR name = 'Line 00043' ORDER BY number;

-- A rescan (the inner side of a nested loop) fetches again.
SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off;
SELECT count(*) FROM (VALUES (1), (2)) v(x), phone_numbers p WHERE p.status = 'blocked';
RESET enable_hashjoin; RESET enable_mergejoin; RESET enable_material;
\! python3 test/mockctl.py count
\! python3 test/mockctl.py clear

-- An empty organisation.
\! python3 test/mockctl.py reset --count 0
SELECT count(*) FROM phone_numbers;
\! python3 test/mockctl.py requests --clear
\! python3 test/mockctl.py reset --count 2500 --seed 1

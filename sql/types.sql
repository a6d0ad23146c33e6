--
-- types: columns are filled by name (camelCase) or by their "key" option,
-- and converted with their declared type; users may declare any subset of
-- columns in any order.
--
\! python3 test/mockctl.py reset --count 2500 --seed 1

CREATE FOREIGN TABLE numbers_typed (
  "createdAt" text,                                   -- a camelCase name is used as is
  created timestamp OPTIONS (key 'createdAt'),        -- without time zone
  created_day date OPTIONS (key 'createdAt'),
  id text,
  provider varchar(20),
  sms_enabled boolean,
  e164_text text OPTIONS (key 'numberE164CheckEnabled'),
  server_timeout int OPTIONS (key 'server.timeoutSeconds'),
  server_timeout_num numeric OPTIONS (key 'server.timeoutSeconds'),
  server_headers jsonb OPTIONS (key 'server.headers'),
  server_text text OPTIONS (key 'server'),
  server_json json OPTIONS (key 'server'),
  future jsonb OPTIONS (key 'someFutureField'),
  future_level smallint OPTIONS (key 'someFutureField.level'),
  future_enabled text OPTIONS (key 'someFutureField.enabled'),
  deep_missing text OPTIONS (key 'server.url.nothing'),
  hooks_count_src jsonb OPTIONS (key 'hooks'),
  attrs json
) SERVER vapi;

SET TimeZone = 'UTC';
SELECT "createdAt", created, created_day, provider, e164_text
  FROM numbers_typed ORDER BY created DESC, id LIMIT 8;

-- Booleans, numbers and nested objects.
SELECT sms_enabled, count(*) FROM numbers_typed
 WHERE provider = 'twilio' GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM numbers_typed
 WHERE server_timeout IS NOT NULL AND server_timeout::numeric = server_timeout_num
   AND server_text::jsonb = server_json::jsonb;
SELECT future, future_level, future_enabled FROM numbers_typed
 WHERE future IS NOT NULL LIMIT 2;
SELECT count(*) FROM numbers_typed WHERE deep_missing IS NOT NULL;
SELECT jsonb_typeof(hooks_count_src), count(*) FROM numbers_typed GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM numbers_typed WHERE server_headers IS NOT NULL;

-- A json (not jsonb) attrs column holds the same object.
SELECT count(*) FROM numbers_typed t JOIN phone_numbers p ON p.id::text = t.id
 WHERE t.attrs::jsonb IS DISTINCT FROM p.attrs;

-- A column named attrs with a key option reads that key instead.
CREATE FOREIGN TABLE numbers_attrs_key (id uuid, attrs jsonb OPTIONS (key 'server')) SERVER vapi;
SELECT count(*) FROM numbers_attrs_key a JOIN phone_numbers p USING (id)
 WHERE a.attrs IS DISTINCT FROM p.server;

-- Timestamps with and without milliseconds, honoured in any TimeZone.
SET TimeZone = 'America/New_York';
SELECT t."createdAt", p.created_at, p.updated_at
  FROM numbers_typed t JOIN phone_numbers p ON p.id::text = t.id
 ORDER BY p.created_at DESC, p.id LIMIT 3;
SET TimeZone = 'Asia/Kolkata';
SELECT t."createdAt", p.created_at
  FROM numbers_typed t JOIN phone_numbers p ON p.id::text = t.id
 ORDER BY p.created_at DESC, p.id LIMIT 2;
RESET TimeZone;

-- Values that cannot convert name the column, its key and the row's id.
\! python3 test/mockctl.py put '[{"id":"00000000-0000-4000-8000-000000000001","orgId":"o","provider":"vapi","createdAt":"2030-01-01T00:00:00.000Z","updatedAt":"2030-01-01T00:00:00.000Z","smsEnabled":"maybe","server":{"timeoutSeconds":"soon"},"someFutureField":[1,2]}]'
SELECT id, sms_enabled FROM numbers_typed WHERE id LIKE '00000000%';
SELECT id, server_timeout FROM numbers_typed WHERE id LIKE '00000000%';
-- a path through something that is not an object reads as absent (NULL)
SELECT id, future_level FROM numbers_typed WHERE id LIKE '00000000%';
CREATE FOREIGN TABLE numbers_bad_type (id uuid, fut int OPTIONS (key 'someFutureField')) SERVER vapi;
SELECT id, fut FROM numbers_bad_type WHERE id = '00000000-0000-4000-8000-000000000001';
\! python3 test/mockctl.py put '[{"id":"00000000-0000-4000-8000-000000000002","orgId":"o","provider":"vapi","createdAt":"yesterday-ish","updatedAt":"2030-01-01T00:00:00Z"}]'
SELECT count(*) FROM numbers_typed;
SELECT id, created_at FROM phone_numbers WHERE id::text LIKE '00000000%';
-- columns the query does not read are not converted
SELECT count(*) FROM phone_numbers WHERE provider = 'vapi';

\! python3 test/mockctl.py reset --count 2500 --seed 1
DROP FOREIGN TABLE numbers_typed, numbers_attrs_key, numbers_bad_type;

--
-- hostile: pages damaged at random (seeded, so reproducible: flipped bytes,
-- deleted spans, inserted garbage, truncation) end every query in correct
-- rows or a clean ERROR, never a crash.  (No prefetch, so that every run
-- sends the same requests and gets the same damage.)
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\! python3 test/mockctl.py reset --count 300 --seed 7
CREATE SERVER hostile FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'mock_url', page_size '50', max_retries '0', prefetch 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER hostile OPTIONS (api_key :'mock_key');
IMPORT FOREIGN SCHEMA vapi FROM SERVER hostile INTO pg_temp;
CREATE TEMP TABLE truth AS SELECT * FROM pg_temp.phone_numbers;
SELECT count(*) FROM truth;
CREATE TEMP TABLE outcome (kind text, sqlstate text, correct boolean);

-- list pages, then single objects
\! python3 test/mockctl.py clear
\! python3 test/mockctl.py fault '[{"match":"GET /v2/phone-number","kind":"corrupt","seed":42,"times":0}]'
DO $$
DECLARE
  n bigint;
  same bigint;
BEGIN
  FOR i IN 1..150 LOOP
    BEGIN
      SELECT count(*), count(*) FILTER (WHERE t.id IS NOT NULL AND t.name IS NOT DISTINCT FROM p.name
                                          AND t.created_at = p.created_at AND t.attrs = p.attrs)
        INTO n, same
        FROM pg_temp.phone_numbers p LEFT JOIN truth t USING (id);
      INSERT INTO outcome VALUES ('list', 'ok', n = 300 AND same = 300);
    EXCEPTION WHEN OTHERS THEN
      INSERT INTO outcome VALUES ('list', SQLSTATE, NULL);
    END;
  END LOOP;
END $$;
\! python3 test/mockctl.py faults-clear
\! python3 test/mockctl.py clear
\! python3 test/mockctl.py fault '[{"match":"GET /phone-number/","kind":"corrupt","seed":7,"times":0}]'
DO $$
DECLARE
  ids uuid[] := (SELECT array_agg(id ORDER BY id) FROM truth);
  same boolean;
BEGIN
  FOR i IN 1..150 LOOP
    BEGIN
      SELECT p.attrs = t.attrs INTO same
        FROM pg_temp.phone_numbers p JOIN truth t USING (id)
       WHERE p.id = ids[i];
      INSERT INTO outcome VALUES ('lookup', 'ok', coalesce(same, false));
    EXCEPTION WHEN OTHERS THEN
      INSERT INTO outcome VALUES ('lookup', SQLSTATE, NULL);
    END;
  END LOOP;
END $$;
\! python3 test/mockctl.py faults-clear

-- what happened: rows, or an error of an expected kind (invalid data from
-- the API, a value that does not convert, a transfer that failed)
SELECT kind, sqlstate, count(*), count(*) FILTER (WHERE correct) AS correct_rows
  FROM outcome GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS unexpected FROM outcome
 WHERE sqlstate NOT IN ('ok', 'HV004', 'HV000', '22P02', '22007', '22008', '22021', '22023', '54001');
-- the backend is fine
SELECT count(*) FROM pg_temp.phone_numbers;
DROP SERVER hostile CASCADE;
\! python3 test/mockctl.py reset --count 2500 --seed 1

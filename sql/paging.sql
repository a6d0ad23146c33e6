--
-- paging: keyset paging on createdAt returns every row exactly once, with
-- ties on page boundaries, runs of equal timestamps longer than a page, and
-- while other rows are created and deleted between pages.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\! python3 test/mockctl.py reset --count 2500 --seed 1

CREATE SERVER tiny FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'mock_url', page_size '4', max_concurrent_requests '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER tiny OPTIONS (api_key :'mock_key');
CREATE FOREIGN TABLE tiny_numbers (id uuid, created_at timestamptz) SERVER tiny;

-- Pages of 4: ties fall on page boundaries, and the run of 5 equal
-- timestamps is longer than a page.
SELECT count(*), count(DISTINCT id) FROM tiny_numbers;
SELECT count(*) FROM tiny_numbers t FULL JOIN phone_numbers p USING (id)
 WHERE t.id IS NULL OR p.id IS NULL;
SELECT max(n) AS longest_run
  FROM (SELECT count(*) AS n FROM phone_numbers GROUP BY created_at) r;
\! python3 test/mockctl.py count --match "GET /v2/phone-number"
-- the run longer than a page is stepped through with page=2
\! python3 test/mockctl.py requests --clear | grep -B1 -A1 'page=2'

-- Rows created and deleted between pages, at the newest end, the oldest
-- end and the middle of the order.
CREATE TEMP TABLE before AS SELECT id FROM phone_numbers;
\! python3 test/mockctl.py mutate '[{"before_list_request":2,"create":5,"delete":5,"at":"newest"},{"before_list_request":40,"create":5,"delete":5,"at":"middle"},{"before_list_request":80,"create":5,"delete":5,"at":"oldest"},{"before_list_request":120,"create":3,"delete":3,"at":"oldest"}]'
CREATE TEMP TABLE during AS SELECT id FROM tiny_numbers;
\! python3 test/mockctl.py mutations
\! python3 test/mockctl.py mutations-clear
CREATE TEMP TABLE after AS SELECT id FROM phone_numbers;
SELECT (SELECT count(*) FROM before) AS before,
       (SELECT count(*) FROM during) AS during,
       (SELECT count(*) FROM after) AS after;
-- no row twice
SELECT count(*) - count(DISTINCT id) AS duplicates FROM during;
-- every row that existed for the whole scan was returned
SELECT count(*) AS missing FROM (SELECT id FROM before INTERSECT SELECT id FROM after
                                 EXCEPT SELECT id FROM during) m;
-- nothing that never existed
SELECT count(*) AS invented FROM (SELECT id FROM during EXCEPT
                                  (SELECT id FROM before UNION SELECT id FROM after)) i;

-- The same with the default page size.
\! python3 test/mockctl.py reset --count 2500 --seed 1
TRUNCATE before, during, after;
INSERT INTO before SELECT id FROM phone_numbers;
\! python3 test/mockctl.py mutate '[{"before_list_request":2,"create":20,"delete":20,"at":"newest"},{"before_list_request":3,"create":20,"delete":20,"at":"oldest"}]'
INSERT INTO during SELECT id FROM phone_numbers;
\! python3 test/mockctl.py mutations-clear
INSERT INTO after SELECT id FROM phone_numbers;
SELECT count(*) - count(DISTINCT id) AS duplicates FROM during;
SELECT count(*) AS missing FROM (SELECT id FROM before INTERSECT SELECT id FROM after
                                 EXCEPT SELECT id FROM during) m;
SELECT count(*) AS invented FROM (SELECT id FROM during EXCEPT
                                  (SELECT id FROM before UNION SELECT id FROM after)) i;

-- The next page is requested before the current one is parsed, with the
-- keyset bound guessed from the raw answer; a wrong guess (here, a nested
-- "createdAt" after each number's own) is caught and the right request
-- sent instead.
\! python3 test/mockctl.py reset --count 0
\! python3 test/mockctl.py put '[{"id":"00000000-0000-4000-8000-000000000001","orgId":"o","provider":"vapi","createdAt":"2024-01-01T00:00:01.000Z","updatedAt":"2024-01-01T00:00:01.000Z","extra":{"createdAt":"1999-01-01T00:00:00.000Z"}},{"id":"00000000-0000-4000-8000-000000000002","orgId":"o","provider":"vapi","createdAt":"2024-01-01T00:00:02.000Z","updatedAt":"2024-01-01T00:00:02.000Z","extra":{"createdAt":"1999-01-01T00:00:00.000Z"}},{"id":"00000000-0000-4000-8000-000000000003","orgId":"o","provider":"vapi","createdAt":"2024-01-01T00:00:03.000Z","updatedAt":"2024-01-01T00:00:03.000Z","extra":{"createdAt":"1999-01-01T00:00:00.000Z"}},{"id":"00000000-0000-4000-8000-000000000004","orgId":"o","provider":"vapi","createdAt":"2024-01-01T00:00:04.000Z","updatedAt":"2024-01-01T00:00:04.000Z","extra":{"createdAt":"1999-01-01T00:00:00.000Z"}},{"id":"00000000-0000-4000-8000-000000000005","orgId":"o","provider":"vapi","createdAt":"2024-01-01T00:00:05.000Z","updatedAt":"2024-01-01T00:00:05.000Z","extra":{"createdAt":"1999-01-01T00:00:00.000Z"}}]'
ALTER SERVER tiny OPTIONS (SET page_size '2');
SELECT count(*), count(DISTINCT id), min(created_at), max(created_at) FROM tiny_numbers;
\! python3 test/mockctl.py requests --clear | grep -q 'createdAtL[te]=1999' && echo "wrong guesses were sent, and replaced"


\! python3 test/mockctl.py reset --count 2500 --seed 1
DROP SERVER tiny CASCADE;

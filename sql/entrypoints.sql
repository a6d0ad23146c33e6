--
-- entrypoints: every way PostgreSQL reaches a foreign data wrapper's scan
-- and write code: COPY FROM, partition routing, UPDATE moving a row between
-- partitions, triggers, views WITH CHECK OPTION, writable CTEs, INSERT ...
-- SELECT from the same table, cursors, rescans, prepared statements with
-- generic plans, transactions, savepoints and two-phase commit.  Each case
-- checks the rows, the requests sent and the messages.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\! python3 test/mockctl.py reset --count 5 --seed 2
SET TimeZone = 'UTC';

--
-- COPY FROM: one POST per row (it crashed the server: COPY reaches the
-- insert code without a ModifyTable plan).
--
COPY phone_numbers (provider, number_desired_area_code, name) FROM STDIN;
vapi	415	copied one
vapi	212	copied two
\.
\! python3 test/mockctl.py requests --body --clear
SELECT name, provider, status FROM phone_numbers WHERE name LIKE 'copied%' ORDER BY name;
\! python3 test/mockctl.py clear
-- a row the API refuses stops COPY and says what was created before it
COPY phone_numbers (provider, number_desired_area_code, name) FROM STDIN;
vapi	312	copied three
vapi	31	copied four
\.
\! python3 test/mockctl.py requests --body --clear

--
-- A foreign table as a partition: rows routed to it, COPY into the
-- parent, and an UPDATE that moves a row into it from a local partition.
--
CREATE TABLE numbers_by_provider (provider text, number_desired_area_code text, name text, id uuid)
  PARTITION BY LIST (provider);
CREATE FOREIGN TABLE numbers_vapi PARTITION OF numbers_by_provider
  FOR VALUES IN ('vapi') SERVER vapi;
CREATE TABLE numbers_other PARTITION OF numbers_by_provider DEFAULT;
INSERT INTO numbers_by_provider VALUES ('vapi', '646', 'routed'), ('plivo', '646', 'kept local')
  RETURNING tableoid::regclass, provider, name;
\! python3 test/mockctl.py requests --body --clear
COPY numbers_by_provider (provider, number_desired_area_code, name) FROM STDIN;
vapi	303	routed by copy
other	303	local by copy
\.
\! python3 test/mockctl.py requests --body --clear
UPDATE numbers_by_provider SET provider = 'vapi', number_desired_area_code = '917'
 WHERE provider = 'plivo' AND name = 'kept local'
 RETURNING tableoid::regclass, provider, name;
\! python3 test/mockctl.py requests --body --clear
SELECT tableoid::regclass, name FROM numbers_by_provider
 WHERE name IN ('routed', 'kept local', 'routed by copy', 'local by copy') ORDER BY name;
\! python3 test/mockctl.py clear
DROP TABLE numbers_by_provider;

--
-- Triggers: a BEFORE ROW trigger changes the row sent; an AFTER ROW
-- trigger sees the row as the API created it.
--
CREATE TABLE audit (op text, id uuid, name text, status text);
CREATE FUNCTION name_upper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.name := upper(NEW.name);
  RETURN NEW;
END $$;
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO audit VALUES (TG_OP, OLD.id, OLD.name, OLD.status);
    RETURN OLD;
  END IF;
  INSERT INTO audit VALUES (TG_OP, NEW.id, NEW.name, NEW.status);
  RETURN NEW;
END $$;
CREATE TRIGGER name_upper BEFORE INSERT OR UPDATE ON phone_numbers
  FOR EACH ROW EXECUTE FUNCTION name_upper();
CREATE TRIGGER audit_row AFTER INSERT OR UPDATE OR DELETE ON phone_numbers
  FOR EACH ROW EXECUTE FUNCTION audit_row();
INSERT INTO phone_numbers (provider, number_desired_area_code, name) VALUES ('vapi', '415', 'triggered');
UPDATE phone_numbers SET name = 'triggered again' WHERE name = 'TRIGGERED';
DELETE FROM phone_numbers WHERE name = 'TRIGGERED AGAIN';
\! python3 test/mockctl.py requests --body --clear | sed 's/[0-9a-f-]\{36\}/<id>/; s/&createdAt.*//'
SELECT op, id IS NOT NULL AS has_id, name, status FROM audit ORDER BY op DESC;
-- an AFTER trigger failing after the write: the rollback warns that the
-- change stays at Vapi (caught here, so that the order of messages is fixed)
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'refused by trigger';
END $$;
CREATE TRIGGER refuse AFTER INSERT ON phone_numbers FOR EACH ROW EXECUTE FUNCTION refuse();
DO $$
BEGIN
  INSERT INTO phone_numbers (provider, number_desired_area_code, name) VALUES ('vapi', '415', 'refused');
EXCEPTION WHEN raise_exception THEN
  RAISE NOTICE 'caught: %', SQLERRM;
END $$;
SELECT count(*) AS kept_at_vapi FROM phone_numbers WHERE name = 'REFUSED';
\! python3 test/mockctl.py clear
DROP TRIGGER refuse ON phone_numbers;
DROP TRIGGER name_upper ON phone_numbers;
DROP TRIGGER audit_row ON phone_numbers;
DROP FUNCTION name_upper(), audit_row(), refuse();
DROP TABLE audit;

--
-- A view WITH CHECK OPTION: a row the view would refuse is never sent (it
-- was created or changed at Vapi, then the error raised).
--
CREATE VIEW vapi_lines AS SELECT id, provider, number_desired_area_code, name
  FROM phone_numbers WHERE provider = 'vapi' AND name LIKE 'Line%' WITH CHECK OPTION;
INSERT INTO vapi_lines (provider, number_desired_area_code, name) VALUES ('vapi', '415', 'Line via view')
  RETURNING provider, name;
\set VERBOSITY terse
INSERT INTO vapi_lines (provider, number_desired_area_code, name) VALUES ('vapi', '415', 'not a line');
UPDATE vapi_lines SET name = 'Line renamed' WHERE name = 'Line via view';
UPDATE vapi_lines SET name = 'renamed out of view' WHERE name = 'Line renamed';
\set VERBOSITY default
\! python3 test/mockctl.py requests --body --clear | sed 's/[0-9a-f-]\{36\}/<id>/; s/&createdAt.*//'
DROP VIEW vapi_lines;

--
-- A statement sees the table as it was when it began: INSERT ... SELECT
-- from the same table copies each number once and ends (it read the numbers
-- it had just created, and never ended), also in created_at order, and a
-- writable CTE's inserts are not seen by the rest of its statement.
--
\! python3 test/mockctl.py reset --count 5 --seed 2
INSERT INTO phone_numbers (provider, number_desired_area_code, name)
  SELECT 'vapi', '415', 'copy of ' || coalesce(name, 'no name') FROM phone_numbers ORDER BY created_at;
\! python3 test/mockctl.py count --match POST
SELECT count(*) FROM phone_numbers;
INSERT INTO phone_numbers (provider, number_desired_area_code, name)
  SELECT 'vapi', '415', 'again ' || name FROM phone_numbers ORDER BY created_at DESC;
SELECT count(*) FROM phone_numbers;
WITH created AS (
  INSERT INTO phone_numbers (provider, number_desired_area_code, name)
    VALUES ('vapi', '415', 'from a CTE') RETURNING id
)
SELECT (SELECT count(*) FROM created) AS created,
       (SELECT count(*) FROM phone_numbers WHERE name = 'from a CTE') AS seen_by_statement;
SELECT count(*) AS seen_after FROM phone_numbers WHERE name = 'from a CTE';
-- the same inside one transaction: the next statement sees them
BEGIN;
INSERT INTO phone_numbers (provider, number_desired_area_code, name) VALUES ('vapi', '415', 'in xact');
SELECT count(*) AS seen_next_statement FROM phone_numbers WHERE name = 'in xact';
COMMIT;
\! python3 test/mockctl.py clear

--
-- Cursors, rescans and generic plans.
--
\! python3 test/mockctl.py reset --count 30 --seed 2
CREATE TABLE local_copy AS SELECT * FROM phone_numbers;
\! python3 test/mockctl.py clear
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT id, created_at FROM phone_numbers ORDER BY created_at DESC;
FETCH 1 FROM c \gset first_
FETCH 2 FROM c;
FETCH ABSOLUTE 30 FROM c;
FETCH BACKWARD 2 FROM c;
MOVE ABSOLUTE 0 IN c;
FETCH 1 FROM c \gset again_
SELECT :'first_id' = :'again_id' AS same_first_row;
CLOSE c;
COMMIT;
\! python3 test/mockctl.py count
-- a lateral subquery rescans the foreign scan once per outer row, with
-- that row's value (a NULL id sends nothing, an unknown one finds nothing)
CREATE TABLE picks AS SELECT id FROM local_copy ORDER BY id LIMIT 4;
INSERT INTO picks VALUES ('00000000-0000-4000-8000-000000000000'), (NULL);
\! python3 test/mockctl.py clear
SELECT count(*), count(x.id) FROM picks p
  LEFT JOIN LATERAL (SELECT n.id FROM phone_numbers n WHERE n.id = p.id OFFSET 0) x ON true;
\! python3 test/mockctl.py requests --clear | sed 's/[0-9a-f-]\{36\}/<id>/'
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
SELECT count(*) FROM picks p WHERE EXISTS (SELECT 1 FROM phone_numbers n WHERE n.created_at > '2020-01-01' AND n.id = p.id);
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;
-- a generic plan sends the values of each execution
SET plan_cache_mode = force_generic_plan;
PREPARE by_time(timestamptz) AS SELECT count(*) FROM phone_numbers WHERE created_at > $1;
PREPARE by_ids(uuid[]) AS SELECT count(*) FROM phone_numbers WHERE id = ANY($1);
SELECT min(created_at) AS t1, max(created_at) AS t2 FROM local_copy \gset
SELECT array_agg(id) AS ids FROM picks \gset
\! python3 test/mockctl.py clear
EXECUTE by_time(:'t1');
EXECUTE by_time(:'t2');
EXECUTE by_ids(:'ids');
\! python3 test/mockctl.py requests --clear | sed 's/[0-9a-f-]\{36\}/<id>/'
SELECT count(*) FROM local_copy WHERE created_at > :'t1';
DEALLOCATE by_time;
DEALLOCATE by_ids;
RESET plan_cache_mode;
DROP TABLE picks, local_copy;

--
-- Transactions: the API has none.  ROLLBACK after writes warns that they
-- stay applied; so does ROLLBACK TO SAVEPOINT; PREPARE TRANSACTION after
-- writes is refused (it could not be rolled back later either).
--
BEGIN;
INSERT INTO phone_numbers (provider, number_desired_area_code, name) VALUES ('vapi', '415', 'rolled back');
ROLLBACK;
SELECT count(*) AS still_at_vapi FROM phone_numbers WHERE name = 'rolled back';
BEGIN;
SAVEPOINT s;
DELETE FROM phone_numbers WHERE name = 'rolled back';
ROLLBACK TO SAVEPOINT s;
UPDATE phone_numbers SET name = 'kept' WHERE name = 'in xact';
COMMIT;
SELECT count(*) AS deleted_anyway FROM phone_numbers WHERE name = 'rolled back';
BEGIN;
INSERT INTO phone_numbers (provider, number_desired_area_code, name) VALUES ('vapi', '415', 'two-phase');
PREPARE TRANSACTION 'vapi_write';
SELECT count(*) AS prepared FROM pg_prepared_xacts;
-- reading is fine in a prepared transaction
BEGIN;
SELECT count(*) > 0 AS read FROM phone_numbers;
PREPARE TRANSACTION 'vapi_read';
COMMIT PREPARED 'vapi_read';
\! python3 test/mockctl.py reset --count 2500 --seed 1

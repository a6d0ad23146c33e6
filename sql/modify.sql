--
-- modify: INSERT, UPDATE and DELETE map to POST, PATCH and DELETE, with
-- RETURNING from the API's answer.  Each case checks the exact JSON body
-- the mock received and the mock's state afterwards.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY
\set VERBOSITY default
\! python3 test/mockctl.py reset --count 40 --seed 1

--
-- INSERT, for every provider.
--
-- buying a Vapi number
INSERT INTO phone_numbers (provider, number_desired_area_code, name, assistant_id)
  VALUES ('vapi', '415', 'Sales line', '5b5d5b0e-0000-4000-8000-000000000001')
  RETURNING provider, number, status, name, assistant_id, org_id IS NOT NULL AS has_org,
            created_at IS NOT NULL AS has_created, id AS vapi_id \gset
\echo :provider :number :status :name :assistant_id :has_org :has_created
\! python3 test/mockctl.py requests --body --clear
\setenv VAPI_ID :vapi_id
\! python3 test/mockctl.py get "$VAPI_ID" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["provider"], d["number"], d["name"], d["numberDesiredAreaCode"])'

-- a SIP number with credentials (the password is a secret)
INSERT INTO phone_numbers (provider, sip_uri, authentication)
  VALUES ('vapi', 'sip:front-desk@sip.vapi.ai',
          '{"realm": "sip.vapi.ai", "username": "front-desk-user-0001", "password": "secret-password-00000001"}')
  RETURNING provider, sip_uri, authentication->>'username' AS username;
-- bring your own number, with the E.164 check off
INSERT INTO phone_numbers (provider, number, credential_id, number_e164_check_enabled, name)
  VALUES ('byo-phone-number', '15551111111', '11111111-1111-4111-8111-111111111111', false, 'Zadarma Number')
  RETURNING provider, number, credential_id, number_e164_check_enabled, name;
-- twilio, with secrets and a webhook server
INSERT INTO phone_numbers (provider, number, twilio_account_sid, twilio_auth_token, sms_enabled, server_url, server)
  VALUES ('twilio', '+14155550101', 'AC0123456789abcdef0123456789abcdef', 'twilio-token-0123456789abcdef012345',
          false, 'https://hooks.example.com/vapi', '{"timeoutSeconds": 20}')
  RETURNING provider, number, twilio_account_sid, twilio_auth_token, sms_enabled, server;
-- vonage and telnyx
INSERT INTO phone_numbers (provider, number, credential_id, fallback_destination)
  VALUES ('vonage', '+442071838750', '22222222-2222-4222-8222-222222222222',
          '{"type": "number", "number": "+14155550199"}')
  RETURNING provider, number, fallback_destination;
INSERT INTO phone_numbers (provider, number, credential_id, hooks)
  VALUES ('telnyx', '+13125550123', '33333333-3333-4333-8333-333333333333',
          '[{"on": "call.ringing", "do": [{"type": "say", "exact": "Hello"}]}]')
  RETURNING provider, number, hooks;
\! python3 test/mockctl.py requests --body --clear

-- attrs: its keys are sent too (those the API assigns are not), and an
-- explicit column wins over the same key in attrs
INSERT INTO phone_numbers (provider, name, attrs)
  VALUES ('vonage', 'Explicit name',
          '{"number": "+14155550102", "credentialId": "44444444-4444-4444-8444-444444444444",
            "name": "from attrs", "id": "ignored", "orgId": "ignored", "createdAt": "2020-01-01T00:00:00Z"}')
  RETURNING provider, number, name, credential_id;
\! python3 test/mockctl.py requests --body --clear

-- multi-row INSERT and INSERT ... SELECT
INSERT INTO phone_numbers (provider, number, credential_id)
  VALUES ('telnyx', '+13125550201', '55555555-5555-4555-8555-555555555555'),
         ('telnyx', '+13125550202', '55555555-5555-4555-8555-555555555555'),
         ('telnyx', '+13125550203', '55555555-5555-4555-8555-555555555555');
CREATE TEMP TABLE to_import (num text, cred text, label text);
INSERT INTO to_import VALUES ('+13125550301', '66666666-6666-4666-8666-666666666666', 'Imported 1'),
                             ('+13125550302', '66666666-6666-4666-8666-666666666666', 'Imported 2');
INSERT INTO phone_numbers (provider, number, credential_id, name)
  SELECT 'vonage', num, cred, label FROM to_import ORDER BY num
  RETURNING number, name;
\! python3 test/mockctl.py requests --body --clear
SELECT provider, count(*) FROM phone_numbers GROUP BY 1 ORDER BY 1;
\! python3 test/mockctl.py clear

--
-- Validation before sending: each error names the column, and nothing is
-- sent.
--
INSERT INTO phone_numbers (provider, number) VALUES ('byo-phone-number', '15551111112');
INSERT INTO phone_numbers (provider, number) VALUES ('vonage', '+14155550103');
INSERT INTO phone_numbers (provider, number) VALUES ('telnyx', '+14155550104');
INSERT INTO phone_numbers (provider, twilio_account_sid) VALUES ('twilio', 'AC0123456789abcdef0123456789abcdef');
INSERT INTO phone_numbers (provider, number) VALUES ('twilio', '+14155550105');
INSERT INTO phone_numbers (provider, name) VALUES ('vapi', 'a name that is much too long for the vapi api');
INSERT INTO phone_numbers (provider, number_desired_area_code) VALUES ('vapi', '41');
INSERT INTO phone_numbers (provider, number_desired_area_code) VALUES ('vapi', '4x5');
INSERT INTO phone_numbers (provider, number) VALUES ('plivo', '+14155550106');
INSERT INTO phone_numbers (number) VALUES ('+14155550107');
INSERT INTO phone_numbers (provider, number, credential_id, sms_enabled) VALUES ('vonage', '+14155550108', 'c', true);
INSERT INTO phone_numbers (provider, number) VALUES ('vapi', '+14155550109');
INSERT INTO phone_numbers (provider, number_desired_area_code, id) VALUES ('vapi', '415', '5b5d5b0e-0000-4000-8000-000000000009');
INSERT INTO phone_numbers (provider, number_desired_area_code, status) VALUES ('vapi', '415', 'active');
INSERT INTO phone_numbers (provider, attrs) VALUES ('vapi', '[1, 2]');
\! python3 test/mockctl.py count

-- The API's own message reaches the user verbatim.
INSERT INTO phone_numbers (provider, number, credential_id) VALUES ('vonage', '12345', 'c');
\! python3 test/mockctl.py requests --body --clear

-- A statement that fails half-way says what the API has already done.
INSERT INTO phone_numbers (provider, number, credential_id, name)
  VALUES ('telnyx', '+13125550401', 'c', 'first'),
         ('telnyx', '+13125550402', 'c', 'second'),
         ('telnyx', '+13125550403', 'c', 'a third name that is much too long to send');
INSERT INTO phone_numbers (provider, number, credential_id)
  VALUES ('telnyx', '+13125550501', 'c'), ('telnyx', 'not-a-number', 'c');
\! python3 test/mockctl.py requests --body --clear
SELECT number FROM phone_numbers WHERE number LIKE '+131255504%' OR number LIKE '+131255505%' ORDER BY 1;
\! python3 test/mockctl.py clear

--
-- UPDATE sends only the columns it sets; NULL becomes JSON null.
--
SELECT id AS twilio_id FROM phone_numbers WHERE number = '+14155550101' \gset
SELECT id AS byo_id FROM phone_numbers WHERE number = '15551111111' \gset
SELECT id AS sip_id FROM phone_numbers WHERE sip_uri = 'sip:front-desk@sip.vapi.ai' \gset
\! python3 test/mockctl.py clear
UPDATE phone_numbers SET name = 'Support', assistant_id = NULL WHERE id = :'twilio_id'
  RETURNING name, assistant_id, number;
-- by id: a lookup, then the PATCH (no list request)
\! python3 test/mockctl.py requests --body --clear
UPDATE phone_numbers SET squad_id = 'squad-1', workflow_id = 'workflow-1' WHERE id = :'twilio_id';
UPDATE phone_numbers SET squad_id = NULL, workflow_id = NULL WHERE id = :'twilio_id';
UPDATE phone_numbers SET number = '+14155550111', sms_enabled = true,
       twilio_account_sid = 'AC00000000000000000000000000000001',
       twilio_auth_token = 'twilio-token-new-0000000000000000000',
       twilio_api_key = 'SK00000000000000000000000000000001',
       twilio_api_secret = 'twilio-api-secret-00000000000000000'
 WHERE id = :'twilio_id';
UPDATE phone_numbers SET credential_id = '77777777-7777-4777-8777-777777777777',
       number_e164_check_enabled = true, number = '+15551111111' WHERE id = :'byo_id';
UPDATE phone_numbers SET sip_uri = 'sip:reception@sip.vapi.ai',
       authentication = '{"realm": "sip.vapi.ai", "username": "reception-user-00001", "password": "secret-password-00000002"}'
 WHERE id = :'sip_id';
UPDATE phone_numbers SET fallback_destination = '{"type": "sip", "sipUri": "sip:backup@example.com"}',
       hooks = '[]' WHERE id = :'sip_id';
-- server_url writes into the server object the row has, keeping its other fields
UPDATE phone_numbers SET server_url = 'https://hooks.example.com/v2' WHERE id = :'twilio_id'
  RETURNING server;
UPDATE phone_numbers SET server = '{"url": "https://other.example.com", "timeoutSeconds": 5}' WHERE id = :'sip_id'
  RETURNING server, server_url;
\! python3 test/mockctl.py requests --body --clear
\setenv VAPI_ID :twilio_id
\! python3 test/mockctl.py get "$VAPI_ID" | sed -E 's/"(createdAt|updatedAt)":"[^"]*"/"\1":"<time>"/g'

-- Read-only columns are refused before any request.
UPDATE phone_numbers SET id = gen_random_uuid() WHERE id = :'twilio_id';
UPDATE phone_numbers SET org_id = 'other' WHERE id = :'twilio_id';
UPDATE phone_numbers SET status = 'active' WHERE id = :'twilio_id';
UPDATE phone_numbers SET created_at = now() WHERE id = :'twilio_id';
UPDATE phone_numbers SET updated_at = now() WHERE id = :'twilio_id';
UPDATE phone_numbers SET provider = 'vonage' WHERE id = :'twilio_id';
UPDATE phone_numbers SET number_desired_area_code = '212' WHERE id = :'vapi_id';
UPDATE phone_numbers SET attrs = '{}' WHERE id = :'twilio_id';
\! python3 test/mockctl.py count
-- a vapi number, and columns the row's provider does not take: refused
-- before the PATCH
UPDATE phone_numbers SET number = '+14155550999' WHERE id = :'vapi_id';
UPDATE phone_numbers SET sms_enabled = false WHERE id = :'byo_id';
UPDATE phone_numbers SET name = 'a name that is much too long for the vapi api' WHERE id = :'byo_id';
\! python3 test/mockctl.py requests --clear
-- an id that does not exist updates nothing
UPDATE phone_numbers SET name = 'nobody' WHERE id = '00000000-0000-4000-8000-00000000dead';
-- several rows, found by a filter
-- (the rows were created in the same instant: sort what depends on order)
WITH moved AS (
  UPDATE phone_numbers SET name = 'Moved ' || right(number, 3) WHERE number LIKE '+131255502%'
  RETURNING number, name)
SELECT * FROM moved ORDER BY number;
\! python3 test/mockctl.py requests --body --clear | sed 's/[0-9a-f-]\{36\}/<id>/' | sort

--
-- UPDATE and DELETE of one id, without RETURNING, setting only fields every
-- provider takes to values that do not depend on the row, go straight to
-- the API: one request, no read first.
--
UPDATE phone_numbers SET assistant_id = NULL WHERE id = :'twilio_id';
SELECT :ROW_COUNT AS updated;
\! python3 test/mockctl.py requests --body --clear
EXPLAIN (VERBOSE, COSTS OFF) UPDATE phone_numbers SET assistant_id = NULL WHERE id = :'twilio_id';
UPDATE phone_numbers SET name = 'Main line', server = '{"url": "https://hooks.example.com/v3"}'
 WHERE id = :'twilio_id';
UPDATE phone_numbers SET name = 'nobody' WHERE id = '00000000-0000-4000-8000-00000000beef';
SELECT :ROW_COUNT AS updated;
\! python3 test/mockctl.py requests --body --clear
-- checked before sending, as ever
UPDATE phone_numbers SET name = 'a name that is much too long for the vapi api' WHERE id = :'twilio_id';
\! python3 test/mockctl.py count
-- these read the row first: RETURNING, another qual, a value from the row,
-- a provider-specific column
EXPLAIN (COSTS OFF) UPDATE phone_numbers SET name = 'x' WHERE id = :'twilio_id' RETURNING name;
EXPLAIN (COSTS OFF) UPDATE phone_numbers SET name = 'x' WHERE id = :'twilio_id' AND provider = 'twilio';
EXPLAIN (COSTS OFF) UPDATE phone_numbers SET name = number WHERE id = :'twilio_id';
EXPLAIN (COSTS OFF) UPDATE phone_numbers SET sms_enabled = true WHERE id = :'twilio_id';

--
-- DELETE
--
DELETE FROM phone_numbers WHERE id = :'byo_id' RETURNING number, provider;
\! python3 test/mockctl.py requests --clear
\setenv VAPI_ID :byo_id
\! python3 test/mockctl.py get "$VAPI_ID"
DELETE FROM phone_numbers WHERE id = '00000000-0000-4000-8000-00000000dead';
SELECT :ROW_COUNT AS deleted;
DELETE FROM phone_numbers WHERE number LIKE '+131255503%';
SELECT :ROW_COUNT AS deleted;
\! python3 test/mockctl.py requests --clear | sed 's/[0-9a-f-]\{36\}/<id>/' | sort
SELECT count(*) FROM phone_numbers WHERE number LIKE '+131255503%';

--
-- EXPLAIN shows the requests.
--
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO phone_numbers (provider) VALUES ('vapi');
EXPLAIN (VERBOSE, COSTS OFF) UPDATE phone_numbers SET name = 'x' WHERE id = :'twilio_id';
EXPLAIN (VERBOSE, COSTS OFF) DELETE FROM phone_numbers WHERE created_at < '2024-01-02';

--
-- Secrets never appear in errors: an API message echoing one is redacted.
--
\! python3 test/mockctl.py fault '[{"match":"PATCH /phone-number","kind":"status","status":400,"message":"twilioAuthToken twilio-token-secret-echo-000000000 is invalid"}]'
UPDATE phone_numbers SET twilio_auth_token = 'twilio-token-secret-echo-000000000' WHERE id = :'twilio_id';
\! python3 test/mockctl.py faults-clear

--
-- Writes need a user mapping of one's own: a PUBLIC one only reads.
--
CREATE ROLE regress_vapi_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON phone_numbers TO regress_vapi_writer;
CREATE USER MAPPING FOR PUBLIC SERVER vapi OPTIONS (api_key :'mock_key');
SET ROLE regress_vapi_writer;
SELECT count(*) > 0 AS can_read FROM phone_numbers WHERE provider = 'telnyx';
INSERT INTO phone_numbers (provider, number_desired_area_code) VALUES ('vapi', '212');
UPDATE phone_numbers SET name = 'x' WHERE id = :'twilio_id';
DELETE FROM phone_numbers WHERE id = :'twilio_id';
RESET ROLE;
CREATE USER MAPPING FOR regress_vapi_writer SERVER vapi OPTIONS (api_key :'mock_key');
SET ROLE regress_vapi_writer;
INSERT INTO phone_numbers (provider, number_desired_area_code) VALUES ('vapi', '212') RETURNING number;
RESET ROLE;
DROP USER MAPPING FOR PUBLIC SERVER vapi;
DROP USER MAPPING FOR regress_vapi_writer SERVER vapi;
REVOKE ALL ON phone_numbers FROM regress_vapi_writer;
DROP ROLE regress_vapi_writer;

\! python3 test/mockctl.py reset --count 2500 --seed 1

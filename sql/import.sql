--
-- import: IMPORT FOREIGN SCHEMA vapi creates phone_numbers with the
-- canonical columns, honouring LIMIT TO and EXCEPT.
--
CREATE SCHEMA imported;
IMPORT FOREIGN SCHEMA vapi FROM SERVER vapi INTO imported;
\d+ imported.phone_numbers
SELECT count(*) FROM imported.phone_numbers;
DROP FOREIGN TABLE imported.phone_numbers;
\! python3 test/mockctl.py clear

IMPORT FOREIGN SCHEMA vapi LIMIT TO (phone_numbers) FROM SERVER vapi INTO imported;
SELECT relname FROM pg_class WHERE relnamespace = 'imported'::regnamespace;
DROP FOREIGN TABLE imported.phone_numbers;

IMPORT FOREIGN SCHEMA vapi EXCEPT (phone_numbers) FROM SERVER vapi INTO imported;
SELECT relname FROM pg_class WHERE relnamespace = 'imported'::regnamespace;

-- Errors: a remote schema or table that does not exist, an option.
IMPORT FOREIGN SCHEMA public FROM SERVER vapi INTO imported;
IMPORT FOREIGN SCHEMA vapi LIMIT TO (phone_number) FROM SERVER vapi INTO imported;
IMPORT FOREIGN SCHEMA vapi EXCEPT (calls) FROM SERVER vapi INTO imported;
IMPORT FOREIGN SCHEMA vapi FROM SERVER vapi INTO imported OPTIONS (prefix 'x');
-- the table exists already in public
IMPORT FOREIGN SCHEMA vapi FROM SERVER vapi INTO public;
-- importing sends no request
\! python3 test/mockctl.py count
DROP SCHEMA imported;

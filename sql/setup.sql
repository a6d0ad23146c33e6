--
-- setup: the objects every other test uses.
--
-- The mock's address and key come from the environment of the test run,
-- so that neither a port nor a key ever appears in an expected file.
--
\getenv mock_url VAPI_MOCK_URL
\getenv mock_key VAPI_MOCK_KEY

CREATE SERVER vapi FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER vapi
  OPTIONS (api_key :'mock_key');
IMPORT FOREIGN SCHEMA vapi FROM SERVER vapi INTO public;

SELECT extname, extversion FROM pg_extension WHERE extname = 'vapi_fdw';
SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc
  FROM pg_foreign_data_wrapper WHERE fdwname = 'vapi_fdw';
\d phone_numbers

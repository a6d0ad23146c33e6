#!/bin/bash
# demo.sh - show vapi_fdw doing its main job.
#
# Installs what is missing, builds and installs the extension, starts a
# throwaway PostgreSQL cluster (vapi_fdw preloaded), and queries the
# phone numbers of a Vapi organisation with SQL: the local mock of the API
# by default, or the real API when VAPI_API_KEY is set (VAPI_URL picks the
# region, default https://api.vapi.ai).  Last it shows what was sent, from
# the statistics view.  Everything is stopped and removed at the end.
#
# Usage: scripts/demo.sh                      (mock organisation)
#        VAPI_API_KEY=... scripts/demo.sh     (your organisation)

source "$(dirname "$0")/lib.sh"

vapi_prepare

if [ -n "${VAPI_API_KEY:-}" ]; then
	url=${VAPI_URL:-https://api.vapi.ai}
	key=$VAPI_API_KEY
	log "using the Vapi API at $url"
else
	vapi_start_mock --count 2500 --seed 1
	url=$VAPI_MOCK_URL
	key=$VAPI_MOCK_KEY
fi
vapi_start_cluster "shared_preload_libraries = 'vapi_fdw'"
# the key reaches psql through its environment, never a command line
VAPI_SERVER_URL=$url VAPI_SERVER_KEY=$key vapi_setup_foreign_table

vapi_psql <<'SQL'
\echo
\echo '-- How many numbers per provider?'
\echo 'SELECT provider, count(*) FROM phone_numbers GROUP BY 1 ORDER BY 2 DESC;'
SELECT provider, count(*) FROM phone_numbers GROUP BY 1 ORDER BY 2 DESC;
\echo '-- The five newest numbers'
\echo 'SELECT number, name, provider, status, created_at FROM phone_numbers ORDER BY created_at DESC LIMIT 5;'
SELECT number, name, provider, status, created_at FROM phone_numbers ORDER BY created_at DESC LIMIT 5;
\echo '-- Join with a local CRM table'
CREATE TABLE crm_accounts AS
  SELECT 'Account ' || row_number() OVER (ORDER BY created_at) AS account, id AS vapi_id
  FROM phone_numbers ORDER BY created_at LIMIT 3;
\echo 'SELECT c.account, p.number, p.provider FROM crm_accounts c JOIN phone_numbers p ON p.id = c.vapi_id;'
SELECT c.account, p.number, p.provider FROM crm_accounts c JOIN phone_numbers p ON p.id = c.vapi_id ORDER BY 1;
\echo '-- What a query sends: only the request it needs'
\echo 'EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT number, created_at FROM phone_numbers ORDER BY created_at DESC LIMIT 3;'
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT number, created_at FROM phone_numbers ORDER BY created_at DESC LIMIT 3;
\echo 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM phone_numbers;'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM phone_numbers;
\echo '-- What the API was sent, by every backend (vapi_fdw is preloaded)'
\echo 'SELECT server_name, requests, responses_2xx, responses_429, rows_received, latency_p95_ms, last_error FROM vapi_fdw_stats;'
SELECT server_name, requests, responses_2xx, responses_429, rows_received, latency_p95_ms, last_error FROM vapi_fdw_stats;
SQL
log "demo finished"

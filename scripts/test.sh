#!/bin/bash
# test.sh - run the whole vapi_fdw test suite.
#
# Installs what is missing (Debian packages), builds the extension with
# warnings as errors, starts a throwaway PostgreSQL cluster and the local
# mock of the Vapi API on loopback, runs the pg_regress suite against them,
# and stops both at the end, on failure too.  Safe to run again.
#
# Usage: scripts/test.sh            (as root on Debian)

source "$(dirname "$0")/lib.sh"

vapi_install_deps
vapi_make_tmp
vapi_build_install
vapi_start_mock --count 2500 --seed 1
vapi_start_cluster

log "running the regression suite"
cd "$VAPI_ROOT"
rm -rf results regression.diffs regression.out
status=0
make -s installcheck PG_CONFIG="$PG_CONFIG" 2>&1 | tee "$VAPI_TMP/installcheck.out" || status=$?
if [ -f regression.diffs ]; then
	echo "---- regression.diffs ----"
	cat regression.diffs
	status=1
fi

# A closing line any CI reader understands.
passed=$(grep -cE '^(ok|test) .* ok ' "$VAPI_TMP/installcheck.out" || true)
failed=$(grep -cE 'FAILED|^not ok' "$VAPI_TMP/installcheck.out" || true)
echo "regression: $passed passed, $failed failed"
[ "$failed" = 0 ] || status=1
exit $status

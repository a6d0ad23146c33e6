#!/bin/bash
# test.sh - run the whole vapi_fdw test suite.
#
# Installs what is missing (Debian packages), builds the extension with
# warnings as errors, starts a throwaway PostgreSQL cluster and the local
# mock of the Vapi API on loopback, runs the mock's own tests, the
# pg_regress suite and the differential test (generated queries over the
# foreign tables compared with local copies) against them, checks the
# server log for crashed backends, and stops both at the end, on failure
# too.  Safe to run again.
#
# Usage: scripts/test.sh            (as root on Debian)
# Environment: PG_MAJOR (default 15) the PostgreSQL major to build and test
# against; VAPI_TEST_INSTALLED=1 tests the extension already installed for
# that major (the Debian package) instead of building it;
# VAPI_DIFFTEST_QUERIES the size of the differential test (default 3000).

source "$(dirname "$0")/lib.sh"

vapi_prepare
vapi_start_mock --count 2500 --seed 1
vapi_start_cluster "max_prepared_transactions = 2"

cd "$VAPI_ROOT"
log "running the mock's own tests"
mock_status=0
python3 test/test_mock.py 2>&1 | tee "$VAPI_TMP/mock-tests.out" || mock_status=$?

log "running the regression suite"
rm -rf results regression.diffs regression.out
status=0
make -s installcheck PG_CONFIG="$PG_CONFIG" 2>&1 | tee "$VAPI_TMP/installcheck.out" || status=$?
if [ -f regression.diffs ]; then
	echo "---- regression.diffs ----"
	cat regression.diffs
	status=1
fi

# The differential test: thousands of generated queries over the foreign
# tables and over local copies of them must give the same answers, also
# under injected faults and while numbers are created and deleted.
log "running the differential test"
diff_status=0
/usr/bin/python3 test/difftest.py --seed 1 --queries "${VAPI_DIFFTEST_QUERIES:-3000}" --faults --churn \
	2>&1 | tee "$VAPI_TMP/difftest.out" || diff_status=$?
diff_passed=$(sed -n 's/^difftest: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$VAPI_TMP/difftest.out")
diff_failed=$(sed -n 's/^difftest: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$VAPI_TMP/difftest.out")
if [ -z "$diff_passed" ]; then
	diff_passed=0
	diff_failed=1
fi
[ "$diff_status" = 0 ] || { status=1; [ "$diff_failed" != 0 ] || diff_failed=1; }

# No shape tried may end a backend abnormally.
crash_failed=0
if grep -E "terminated by signal|was terminated by exception|PANIC:|server process .* exited with exit code [^0]" \
	"$VAPI_TMP/server.log" >/dev/null 2>&1; then
	echo "---- the server log shows a backend that ended abnormally ----"
	grep -E "terminated by signal|was terminated by exception|PANIC:|exited with exit code" "$VAPI_TMP/server.log"
	status=1
	crash_failed=1
fi

# The PGXN META.json must carry the control file's version (as semver).
version_failed=0
ctl_version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" vapi_fdw.control)
want_version=$ctl_version
if [[ $want_version =~ ^[0-9]+\.[0-9]+$ ]]; then
	want_version="$want_version.0"
fi
meta_versions=$(python3 -c 'import json; d = json.load(open("META.json")); print(d["version"], d["provides"]["vapi_fdw"]["version"])')
if [ "$meta_versions" != "$want_version $want_version" ]; then
	echo "META.json gives version(s) $meta_versions; the control file's is $ctl_version ($want_version)"
	status=1
	version_failed=1
fi

# No test input or expected output may hold the key.
key_failed=0
if grep -rlF "$VAPI_MOCK_KEY" sql expected >/dev/null 2>&1; then
	echo "the API key appears in:" $(grep -rlF "$VAPI_MOCK_KEY" sql expected)
	status=1
	key_failed=1
fi

# A closing line any CI reader understands: regression and mock tests.
# pg_regress prints "test x ... ok" up to PostgreSQL 15 and TAP from 16 on
passed=$(grep -cE '^(test .* ok |ok [0-9]+ )' "$VAPI_TMP/installcheck.out" || true)
failed=$(grep -cE 'FAILED|^not ok' "$VAPI_TMP/installcheck.out" || true)
failed=$((failed + key_failed + crash_failed + version_failed))
mock_run=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\}.*/\1/p' "$VAPI_TMP/mock-tests.out")
mock_failed=$(sed -n 's/^FAILED (\(failures\|errors\)=\([0-9]*\).*/\2/p' "$VAPI_TMP/mock-tests.out")
mock_failed=${mock_failed:-0}
[ "$mock_status" = 0 ] || { status=1; [ "$mock_failed" != 0 ] || mock_failed=1; }
[ "$failed" = 0 ] || status=1
# a suite that stopped early (pg_regress error) counts as a failure
[ "$status" = 0 ] || [ "$((failed + mock_failed))" != 0 ] || failed=1
echo "tests: $((passed + ${mock_run:-0} - mock_failed + diff_passed)) passed, $((failed + mock_failed + diff_failed)) failed"
exit $status

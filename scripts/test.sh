#!/bin/bash
# test.sh - run the whole vapi_fdw test suite.
#
# Installs what is missing (Debian packages), builds the extension with
# warnings as errors, starts a throwaway PostgreSQL cluster and the local
# mock of the Vapi API on loopback, runs the mock's own tests, the
# pg_regress suite and the differential test (generated queries over the
# foreign tables compared with local copies) against them with vapi_fdw in
# shared_preload_libraries, then the tests of what differs without it
# (monitor_backend) on the same cluster restarted without it, checks the
# server log for crashed backends, that META.json carries the control
# file's version and that no test file holds the API key, and stops both at
# the end, on failure too.  Each of these stages passes or fails by its exit
# status; any failed stage makes the script exit non-zero.  The closing line
# "tests: N passed, M failed" counts the tests from the stages' outputs (at
# least one failure per failed stage).  Safe to run again.
#
# Usage: scripts/test.sh            (as root on Debian)
# Environment: PG_MAJOR (default 15) the PostgreSQL major to build and test
# against; VAPI_TEST_INSTALLED=1 tests the extension already installed for
# that major (the Debian package) instead of building it;
# VAPI_DIFFTEST_QUERIES the size of the differential test (default 3000).

source "$(dirname "$0")/lib.sh"

vapi_prepare
vapi_start_mock --count 2500 --seed 1
vapi_start_cluster "max_prepared_transactions = 2" "shared_preload_libraries = 'vapi_fdw'"

cd "$VAPI_ROOT"

# Each stage's verdict is its command's exit status; the stages that
# failed are listed here, and any of them fails the suite.
failed_stages=""

# stage NAME COMMAND...: run one stage of the suite, its output (stdout
# and stderr) shown and kept in $VAPI_TMP/NAME.out; a non-zero exit status
# marks it failed.
stage() {
	local name=$1 rc=0
	shift
	"$@" 2>&1 | tee "$VAPI_TMP/$name.out" || rc=$?
	[ "$rc" = 0 ] || stage_failed "$name"
}

# stage_failed NAME: mark a stage failed.
stage_failed() {
	case " $failed_stages " in
		*" $1 "*) ;;
		*) failed_stages="$failed_stages $1" ;;
	esac
}

# The closing line's numbers, added up stage by stage.
passed=0
failed=0

# tally NAME PASSED FAILED: add a stage's counts, read from its output, to
# the closing line; a failed stage counts at least one failure, whatever
# its output says (it may have stopped before printing any count).
tally() {
	local name=$1 p=${2:-0} f=${3:-0}
	case " $failed_stages " in
		*" $name "*) [ "$f" != 0 ] || f=1 ;;
	esac
	passed=$((passed + p))
	failed=$((failed + f))
}

log "running the mock's own tests"
stage mock-tests python3 test/test_mock.py

log "running the regression suite"
rm -rf results regression.diffs regression.out
stage installcheck make -s installcheck PG_CONFIG="$PG_CONFIG"
if [ -f regression.diffs ]; then
	echo "---- regression.diffs ----"
	cat regression.diffs
	stage_failed installcheck
fi

# The differential test: thousands of generated queries over the foreign
# tables and over local copies of them must give the same answers, also
# under injected faults and while numbers are created and deleted.
log "running the differential test"
stage difftest /usr/bin/python3 test/difftest.py --seed 1 --queries "${VAPI_DIFFTEST_QUERIES:-3000}" \
	--faults --churn

# Without shared_preload_libraries the statistics and the rate budget are
# per backend: the same cluster, restarted without the library preloaded.
log "running the tests without shared_preload_libraries"
# installcheck_backend: the regression tests of that configuration.
installcheck_backend() {
	vapi_restart_cluster "shared_preload_libraries = ''" || return 1
	rm -rf results regression.diffs regression.out
	make -s installcheck PG_CONFIG="$PG_CONFIG" REGRESS="monitor_backend" || return 1
	if [ -f regression.diffs ]; then
		echo "---- regression.diffs ----"
		cat regression.diffs
		return 1
	fi
}
stage installcheck-backend installcheck_backend

# no_crashes: no shape tried may end a backend abnormally; fails when the
# server log shows one (or cannot be read).
no_crashes() {
	local rc=0
	local crash="terminated by signal|was terminated by exception|PANIC:|server process .* exited with exit code [^0]"
	grep -E "$crash" "$VAPI_TMP/server.log" >/dev/null 2>&1 || rc=$?
	case $rc in
		1) return 0 ;;
		0)
			echo "---- the server log shows a backend that ended abnormally ----"
			grep -E "$crash" "$VAPI_TMP/server.log"
			return 1
			;;
		*)
			echo "cannot read the server log $VAPI_TMP/server.log"
			return 1
			;;
	esac
}
stage crash-check no_crashes

# meta_version_matches: the PGXN META.json must carry the control file's
# version (as semver).
meta_version_matches() {
	local ctl_version want_version meta_versions
	ctl_version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" vapi_fdw.control)
	want_version=$ctl_version
	if [[ $want_version =~ ^[0-9]+\.[0-9]+$ ]]; then
		want_version="$want_version.0"
	fi
	meta_versions=$(python3 -c 'import json; d = json.load(open("META.json")); print(d["version"], d["provides"]["vapi_fdw"]["version"])') || return 1
	if [ "$meta_versions" != "$want_version $want_version" ]; then
		echo "META.json gives version(s) $meta_versions; the control file's is $ctl_version ($want_version)"
		return 1
	fi
}
stage version-check meta_version_matches

# no_key_in_tests: no test input or expected output may hold the key;
# fails when one does (or they cannot be read).
no_key_in_tests() {
	local rc=0
	grep -rlF "$VAPI_MOCK_KEY" sql expected >/dev/null 2>&1 || rc=$?
	case $rc in
		1) return 0 ;;
		0)
			echo "the API key appears in:" $(grep -rlF "$VAPI_MOCK_KEY" sql expected)
			return 1
			;;
		*)
			echo "cannot search sql/ and expected/ for the API key"
			return 1
			;;
	esac
}
stage key-check no_key_in_tests

# A closing line any CI reader understands, counted from the outputs: the
# regression tests, the mock's tests and the differential queries passed;
# those failed, plus one per failed check.
# pg_regress prints "test x ... ok" up to PostgreSQL 15 and TAP from 16 on
tally installcheck "$(grep -cE '^(test .* ok |ok [0-9]+ )' "$VAPI_TMP/installcheck.out" || true)" \
	"$(grep -cE 'FAILED|^not ok' "$VAPI_TMP/installcheck.out" || true)"
tally installcheck-backend "$(grep -cE '^(test .* ok |ok [0-9]+ )' "$VAPI_TMP/installcheck-backend.out" || true)" \
	"$(grep -cE 'FAILED|^not ok' "$VAPI_TMP/installcheck-backend.out" || true)"
mock_run=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\}.*/\1/p' "$VAPI_TMP/mock-tests.out")
# unittest's "FAILED (failures=N, errors=M)": both count
mock_failed=$(sed -n 's/^FAILED (\(.*\))$/\1/p' "$VAPI_TMP/mock-tests.out" |
	{ grep -oE '(failures|errors)=[0-9]+' || true; } | awk -F= '{ n += $2 } END { print n + 0 }')
tally mock-tests "$(( ${mock_run:-0} - ${mock_failed:-0} ))" "${mock_failed:-0}"
tally difftest "$(sed -n 's/^difftest: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$VAPI_TMP/difftest.out")" \
	"$(sed -n 's/^difftest: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$VAPI_TMP/difftest.out")"
tally crash-check 0 0
tally version-check 0 0
tally key-check 0 0
echo "tests: $passed passed, $failed failed"
[ -z "$failed_stages" ] || exit 1

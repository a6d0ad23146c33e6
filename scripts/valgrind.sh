#!/bin/bash
# valgrind.sh - run the regression suite with the server under valgrind
# memcheck and report every leak and memory error that involves vapi_fdw.
#
# Installs valgrind if missing, builds and installs the extension, starts
# the mock and a throwaway cluster whose postmaster (and so every backend)
# runs under memcheck, with vapi_fdw preloaded as the suite runs it, runs
# the tests, stops the server so that each backend's leak check runs at
# exit, and scans the reports: a loss record
# or an error whose stack holds a frame of vapi_fdw.so (our code, or curl
# and json-c objects allocated on its behalf) counts.  Test output diffs are
# expected under valgrind (timing checks) and are not the point here.
#
# Usage: scripts/valgrind.sh [test ...]     (default: most of the suite)

source "$(dirname "$0")/lib.sh"

tests=${*:-"setup options scan types import errors paging pushdown modify reliability hostile"}

vapi_prepare valgrind
vapi_start_mock --count 2500 --seed 1

# the cluster, with the postmaster under memcheck
port=$(vapi_free_port)
vapi_init_cluster "$port" "max_connections = 40" "shared_preload_libraries = 'vapi_fdw'"
mkdir -p "$VAPI_TMP/vg"
chown postgres "$VAPI_TMP/vg"
log "starting PostgreSQL under valgrind on port $port (slow)"
runuser -u postgres -- valgrind --quiet --trace-children=yes --leak-check=full \
	--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite \
	--num-callers=40 --log-file="$VAPI_TMP/vg/%p.log" \
	"$PG_BIN/postgres" -D "$VAPI_TMP/data" >"$VAPI_TMP/server.log" 2>&1 &
vapi_cluster_started "$port"
for i in $(seq 1 120); do
	"$PG_BIN/pg_isready" -q && break
	sleep 1
done

log "running: $tests"
cd "$VAPI_ROOT"
make -s installcheck PG_CONFIG="$PG_CONFIG" REGRESS="$tests" >"$VAPI_TMP/installcheck.out" 2>&1 || true
grep -E '^test |^ok|^not ok' "$VAPI_TMP/installcheck.out" || true

log "stopping the server (each backend checks for leaks as it exits)"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$VAPI_TMP/data" -m fast -w -t 600 stop >/dev/null || true
VAPI_PG_STARTED=""

# A report block starts with "==PID== " followed by a heading line and ends
# at the next blank "==PID== " line.
python3 - "$VAPI_TMP/vg" <<'PY'
import os, re, sys
d = sys.argv[1]
files = [os.path.join(d, f) for f in os.listdir(d)]
ours = []
errors_total = 0
for f in files:
    blocks, cur = [], []
    for line in open(f, errors="replace"):
        body = re.sub(r"^==\d+== ?", "", line.rstrip("\n"))
        if body == "":
            if cur:
                blocks.append(cur)
            cur = []
        else:
            cur.append(body)
    if cur:
        blocks.append(cur)
    for b in blocks:
        text = "\n".join(b)
        is_problem = ("definitely lost" in b[0] or "indirectly lost" in b[0]
                      or b[0].startswith("Invalid ") or "uninitialised" in b[0]
                      or b[0].startswith("Conditional jump"))
        if is_problem:
            errors_total += 1
            if "vapi_fdw.so" in text:
                ours.append((f, text))
print("processes checked: %d" % len(files))
print("problems reported in all processes: %d" % errors_total)
print("problems involving vapi_fdw: %d" % len(ours))
kinds = {}
for f in files:
    for line in open(f, errors="replace"):
        m = re.match(r"==\d+== (Invalid \w+|Conditional jump|Use of uninitialised|Syscall param|\d[\d,]* bytes in [\d,]+ blocks are (definitely|indirectly) lost)", line)
        if m:
            k = re.sub(r"^[\d,]+ bytes in [\d,]+ blocks are ", "", m.group(1))
            kinds[k] = kinds.get(k, 0) + 1
print("by kind (all processes): " + ", ".join("%s: %d" % kv for kv in sorted(kinds.items())))
for f, text in ours[:20]:
    print("---- %s\n%s" % (os.path.basename(f), text))
sys.exit(1 if ours else 0)
PY

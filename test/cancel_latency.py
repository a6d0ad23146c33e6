#!/usr/bin/env python3
"""cancel_latency.py - measure how long a cancelled vapi_fdw query takes to end.

For each case (a transfer stalled by the mock, a retry back-off wait), runs
the query in one psql process, sends pg_cancel_backend (or
pg_terminate_backend) from another after a delay, and measures the time
from sending the cancel (through an open session) to the exit of the first
psql.  Prints the worst
and the median of N tries.  Needs the environment of scripts/lib.sh
(PGHOST, PGPORT, PGUSER, VAPI_MOCK_URL) and a database with the
phone_numbers foreign table.
"""
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def mockctl(*args):
    """Run a mockctl command."""
    subprocess.run([sys.executable, os.path.join(HERE, "mockctl.py")] + list(args),
                   check=True, stdout=subprocess.DEVNULL)


def one_try(db, canceller, fault, signal_fn, tag):
    """One measurement: seconds from sending the cancel to the query's end.

    The cancel goes through an already connected psql ("canceller"), so the
    time measured is the server's, not a new process's start-up."""
    mockctl("faults-clear")
    mockctl("fault", fault)
    q = subprocess.Popen(["psql", "-X", "-q", "-d", db, "-c",
                          "SELECT count(*) FROM phone_numbers /* %s */" % tag],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)
    t0 = time.monotonic()
    canceller.stdin.write("SELECT %s(pid) FROM pg_stat_activity WHERE query LIKE '%%%s%%' "
                          "AND pid <> pg_backend_pid();\n" % (signal_fn, tag))
    canceller.stdin.flush()
    q.wait(timeout=30)
    elapsed = time.monotonic() - t0
    if canceller.stdout.readline().strip() != "t":
        raise SystemExit("the cancel did not find the query")
    err = q.stderr.read()
    if "canceling" not in err and "terminating" not in err:
        raise SystemExit("unexpected outcome: %r" % err)
    return elapsed


def main():
    """Measure every case and print a table."""
    db = sys.argv[1] if len(sys.argv) > 1 else "postgres"
    tries = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    cases = [
        ("stalled transfer, pg_cancel_backend",
         '[{"match":"GET /v2/phone-number","kind":"stall","ms":10000,"times":0}]',
         "pg_cancel_backend"),
        ("back-off wait (Retry-After 5), pg_cancel_backend",
         '[{"match":"GET /v2/phone-number","kind":"status","status":503,"retry_after":"5","times":0}]',
         "pg_cancel_backend"),
        ("stalled transfer, pg_terminate_backend",
         '[{"match":"GET /v2/phone-number","kind":"stall","ms":10000,"times":0}]',
         "pg_terminate_backend"),
    ]
    canceller = subprocess.Popen(["psql", "-X", "-q", "-tA", "-d", db],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
    print("%-50s %10s %10s" % ("case (%d tries)" % tries, "worst ms", "median ms"))
    for name, fault, fn in cases:
        times = [one_try(db, canceller, fault, fn, "latency%d" % i) * 1000
                 for i in range(tries)]
        print("%-50s %10.1f %10.1f" % (name, max(times), statistics.median(times)))
    canceller.stdin.close()
    canceller.wait()
    mockctl("faults-clear")


if __name__ == "__main__":
    main()

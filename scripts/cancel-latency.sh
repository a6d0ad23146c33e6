#!/bin/bash
# cancel-latency.sh - measure how fast a cancelled or terminated vapi_fdw
# query ends while a transfer is stalled or a retry back-off is waiting.
#
# Starts a throwaway cluster and the mock (like the test suite) and prints
# the worst and median latency of N tries (default 20) per case.
#
# Usage: scripts/cancel-latency.sh [tries]

source "$(dirname "$0")/lib.sh"

vapi_prepare
vapi_start_mock --count 2500 --seed 1
vapi_start_cluster
vapi_setup_foreign_table
python3 "$VAPI_ROOT/test/cancel_latency.py" postgres "${1:-20}"

#!/usr/bin/env python3
# vapi_mock.py - a local stand-in for the Vapi phone-number REST API: the
# command that starts it.  The mock itself is the package vapimock/ next to
# this file, one module per concern; its documentation (routes, control
# API, fault rules, behaviour switches, the black hole listener, the
# data-set knobs) is the docstring of vapimock/__init__.py.
#
# Usage:
#   python3 test/vapi_mock.py [--host 127.0.0.1] [--port 0] [--port-file FILE]
#                             [--key KEY] [--count 2500] [--seed 1]
#                             [--max-step 7200] [--newest now|ISO]
#                             [--blackhole-port-file FILE]
#
# Only the Python 3 standard library is used.

import os
import sys

# The package sits next to this file.  Python puts the folder of the script
# it runs on the path; a run through runpy or an import of this file from
# elsewhere needs it put there.
HERE = os.path.dirname(os.path.realpath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import vapimock.server  # after the path above

if __name__ == "__main__":
    sys.exit(vapimock.server.main())

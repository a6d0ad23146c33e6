# vapimock/__init__.py - the Vapi mock as a package.  test/vapi_mock.py
# runs it, and its header comment documents the mock.
"""The Vapi mock (a local stand-in for the Vapi phone-number REST API).

The code is in one module per concern; each imports only modules above it
in this list, so none imports another in a cycle:
  data        the constants every module shares, the time, id and JSON
              helpers, and the deterministic data set
  validation  request validation (list queries, the bodies of each
              provider, behaviour switches) and its messages
  store       the in-memory store: listing with filters, paging, sort and
              retention, the page cache, lookups, behaviour switches as
              they shape stored numbers and answers
  response    the answer objects and the error shapes
  faults      fault rules and what they answer, damaged bodies, and the
              mutations that change the data between two list requests
  server      the HTTP server and handler (API and control routes), the
              black hole listener, and main()
"""

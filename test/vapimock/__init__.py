# vapimock/__init__.py - the Vapi mock as a package: its documentation
# (below) and the list of its modules.  test/vapi_mock.py runs it.
"""A local stand-in for the Vapi phone-number REST API.

It serves the phone-number endpoints of the public API (GET /phone-number,
GET /v2/phone-number, GET/PATCH/DELETE /phone-number/{id}, POST
/phone-number and the legacy POST /phone-number/buy) over HTTP/1.1 with
keep-alive, from a synthetic data set that is fully determined by --seed,
--count and the two knobs below.  Requests are validated the way the real
NestJS backend does it (whitelisted properties, per-provider DTOs) and
errors come back in the same JSON shape
({"statusCode":..,"message":..,"error":..}).

A control API under /__mock/ (no authentication, never logged) lets tests
reset the data, read the request log, plant arbitrary rows, inject faults
(latency, error statuses, malformed or truncated bodies, cut or stalled
connections), create/delete numbers between two list requests and switch
on behaviours of other deployments of the API (below).

Each entry of the request log (GET /__mock/requests) also tells when the
request ran, for tests of concurrent clients: "start_ms" (taken when the
request had been read) and "end_ms" (when its answer was sent, taken just
before its last byte goes out, or when the connection is cut or given up,
before it is closed; null while it runs), in milliseconds on the monotonic
clock since the last log clear or reset, and "inflight", the number of API
requests in progress when it started, itself included.  A client that
sends a request only after it has read the answer to another one never
sees the two overlap.
"retry_after" is the Retry-After header of its answer (text, else null).
GET /__mock/stats reports "max_inflight", the largest inflight since the
last log clear or reset, and "inflight", the API requests in progress now.

Fault rules take "skip" and "times" (which matching requests a rule
covers) and "every": n (only every n-th request of that window gets the
fault, the others pass on; "times" then counts the faulted requests).
Besides "match" (a method and a path prefix, e.g. "GET /v2/phone-number"),
"contains": TEXT narrows a rule to the requests whose target (path and
query string, as received, before any decoding) contains TEXT, e.g. one
createdAt window of a split list scan:
  {"kind": "status", "status": 429, "retry_after": "1", "times": 0,
   "match": "GET /v2/phone-number", "contains": "createdAtGe=2024-03-01"}
Only the requests that match both count for "skip", "times" and "every".  A
"body" fault may add response headers with "headers": {"Name": "value"}
(strings without CR or LF, sent as UTF-8 after the standard headers).
An "html" fault answers an nginx-style HTML page (Content-Type text/html)
with the given status (default 502), and a Retry-After header when the
rule has "retry_after": the answer of a proxy in front of the API.  For
example (a "match" such as "GET /v2/phone-number" narrows the requests):
  {"kind": "html", "status": 403}                      403 Forbidden page
  {"kind": "html", "status": 429, "retry_after": "2"}  429 Too Many Requests
                                                       page, Retry-After: 2

Behaviour switches (POST /__mock/behaviour with a JSON object merges them
into the current set and answers the new set; GET answers the set; DELETE
and POST /__mock/reset clear it; an unknown name or a bad value gets 400
with a message string; null, false or [] turns a switch off) make the mock
behave like other deployments of the API.  With no switch on, nothing
differs from the description above.
  "reject_params": [NAME, ...]  a list request (v1 or v2) carrying one of
      these query parameters (names of the v2 list parameters) gets 400
      {"message":["property NAME should not exist",...],"error":
      "Bad Request","statusCode":400}: one message per rejected parameter
      present, in the order of the switch, then any other validation
      message.
  "no_v2": true  every request to /v2/phone-number... gets 404
      {"message":"Cannot GET /v2/phone-number?QUERY","error":"Not Found",
      "statusCode":404} (method and target as received; a request without
      the right key still gets the 401 first, as on every route).
  "microseconds": true  every number is stored with createdAt and updatedAt
      in microseconds: both get the same extra 0..999 us, the first four
      bytes of sha256("vapi-mock:us:" + id) modulo 1000.  Filters and
      sorting use the microsecond values (a filter value, which has
      milliseconds, means that millisecond's first microsecond), while the
      JSON prints the same text as without the switch.  Numbers that share
      a printed millisecond (the data set has ~1 in 25 repeated createdAt
      values and a run of 5: with --count 2500 --seed 1, 75 groups holding
      154 numbers) then differ in storage; two extras could coincide in
      principle (none do in that data set), and the id orders them then.
  "ignore_sort_order": true  v2 sorts newest first whatever sortOrder
      asks; metadata.sortOrder still echoes the request.
  "cap_limit": N  list pages hold at most N numbers whatever limit asks:
      v2 page p holds rows (p-1)*N .. p*N-1; metadata.itemsPerPage echoes
      the limit asked, totalPages and hasNextPage use the real page size.
  "no_has_next_page": true  v2 metadata without totalPages, hasNextPage
      and sortOrder (the shape before mid-2026).
  "minimal_metadata": true  v2 metadata holds only itemsPerPage,
      totalItems and currentPage (the shape before 2025-08; also drops the
      retention fields).
  "retention_days": D  or  "retention_since": ISO  lists never return the
      numbers created before the window start: the newest createdAt minus
      D days (taken when the switch is set) or the given instant.  v2
      metadata then gets "itemsBeyondRetention": true (else nothing) when
      numbers matching the request exist before the window, and
      "createdAtGe": window start (ISO, milliseconds) when the request has
      no lower createdAt bound or an earlier one (compared in microseconds:
      createdAtGt one millisecond before the start is earlier); totalItems
      counts the window only.  GET, PATCH and
      DELETE by id are not limited.  Setting one of the two drops the other.
  "legacy_secrets": true  every stored object (generated, planted or
      created by a mutation rule; not those created by POST while the
      switch is on) shows the fields of numbers created before 2025: its
      "server" object, if any, gets "secret", and the object ends with
      "serverUrl" (server.url, else https://legacy-hooks.example.com/vapi/
      followed by the id) and "serverUrlSecret".  Both secrets are the
      first 32 hex digits of sha256("vapi-mock:legacy-secret:" + id);
      fields a planted object already has are kept.  A PATCH that sends
      "server" replaces it, secret and all; the serverUrl fields stay.
      Writes that send these fields get 400 like always, e.g.
      "server.property secret should not exist" and "property
      serverUrlSecret should not exist".
  "v1_order": "ASC"  v1 lists oldest first ("DESC", the default: newest
      first).
  "rename_fields": {FIELD: NEW, ...}  every phone-number object the API
      routes answer (v1 lists, v2 results, GET by id, and the answers of
      POST /phone-number, POST /phone-number/buy, PATCH and DELETE) serves
      each top-level FIELD it has under the name NEW instead, renamed in
      place (the key keeps its position), or without it when NEW is "".
      The mapping applies to all fields at once (a swap works).  A field
      that keeps its name gives way to a field renamed to it; of two
      fields renamed to one name the later value wins, at the position of
      the first.  Only the JSON sent changes: storage, filters, sorting,
      paging, metadata and request validation are as without the switch,
      and the /__mock/numbers routes show the stored objects.  Each FIELD
      is a non-empty name and each NEW a string, else 400 'rename_fields
      must be an object mapping field names to a new name, or to "" to
      drop the field'; {} (like null) turns the switch off, and a new
      object replaces the whole mapping.  With "legacy_secrets" the legacy
      fields are renamed too.

With --blackhole-port-file the mock also listens on a second port (chosen
by the system, written to that file before --port-file is written) that
accepts connections and then never answers (nothing is read or written):
a server stuck in the middle of connecting.  Each connection is held
until the peer closes it or the mock stops.  GET /__mock/stats reports the port
("blackhole_port", null without the option) and the connections accepted
since the last reset ("blackhole_connections").

Two more knobs shape the data set: --max-step (the largest gap in seconds
between two consecutive createdAt values) and --newest (shift the whole
data set by whole seconds so that the newest createdAt falls in the current
second, "now", or in the second of a given ISO 8601 date-time).  The body
of POST /__mock/reset takes them as "max_step" and "newest" next to "count"
and "seed"; fields left out keep the command-line values ("newest": null
turns the shift off).

Usage:
  python3 test/vapi_mock.py [--host 127.0.0.1] [--port 0] [--port-file FILE]
                            [--key KEY] [--count 2500] [--seed 1]
                            [--max-step 7200] [--newest now|ISO]
                            [--blackhole-port-file FILE]

Only the Python 3 standard library is used.

The code is in one module per concern; each imports only modules above it
in this list, so none imports another in a cycle:
  data        the constants every module shares, the time, id and JSON
              helpers, and the deterministic data set
  validation  request validation (list queries, the bodies of each
              provider, behaviour switches) and its messages
  store       the in-memory store: listing with filters, paging, sort and
              retention, the page cache, lookups, behaviour switches as
              they shape stored numbers and answers, the request log and
              its clock
  response    the answer objects and the error shapes
  faults      fault rules and what they answer, damaged bodies, and the
              mutations that change the data between two list requests
  server      the HTTP server and handler (API and control routes), the
              black hole listener, and main()
"""

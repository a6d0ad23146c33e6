#!/usr/bin/env python3
# vapi_mock.py - a local stand-in for the Vapi phone-number REST API.
#
# It serves the phone-number endpoints of the public API (GET /phone-number,
# GET /v2/phone-number, GET/PATCH/DELETE /phone-number/{id}, POST
# /phone-number and the legacy POST /phone-number/buy) over HTTP/1.1 with
# keep-alive, from a synthetic data set that is fully determined by --seed,
# --count and the two knobs below.  Requests are validated the way the real
# NestJS backend does it (whitelisted properties, per-provider DTOs) and
# errors come back in the same JSON shape
# ({"statusCode":..,"message":..,"error":..}).
#
# A control API under /__mock/ (no authentication, never logged) lets tests
# reset the data, read the request log, plant arbitrary rows, inject faults
# (latency, error statuses, malformed or truncated bodies, cut or stalled
# connections), create/delete numbers between two list requests and switch
# on behaviours of other deployments of the API (below).
#
# Fault rules take "skip" and "times" (which matching requests a rule
# covers) and "every": n (only every n-th request of that window gets the
# fault, the others pass on; "times" then counts the faulted requests).  A
# "body" fault may add response headers with "headers": {"Name": "value"}
# (strings without CR or LF, sent as UTF-8 after the standard headers).
# An "html" fault answers an nginx-style HTML page (Content-Type text/html)
# with the given status (default 502), and a Retry-After header when the
# rule has "retry_after": the answer of a proxy in front of the API.  For
# example (a "match" such as "GET /v2/phone-number" narrows the requests):
#   {"kind": "html", "status": 403}                      403 Forbidden page
#   {"kind": "html", "status": 429, "retry_after": "2"}  429 Too Many Requests
#                                                        page, Retry-After: 2
#
# Behaviour switches (POST /__mock/behaviour with a JSON object merges them
# into the current set and answers the new set; GET answers the set; DELETE
# and POST /__mock/reset clear it; an unknown name or a bad value gets 400
# with a message string; null, false or [] turns a switch off) make the mock
# behave like other deployments of the API.  With no switch on, nothing
# differs from the description above.
#   "reject_params": [NAME, ...]  a list request (v1 or v2) carrying one of
#       these query parameters (names of the v2 list parameters) gets 400
#       {"message":["property NAME should not exist",...],"error":
#       "Bad Request","statusCode":400}: one message per rejected parameter
#       present, in the order of the switch, then any other validation
#       message.
#   "no_v2": true  every request to /v2/phone-number... gets 404
#       {"message":"Cannot GET /v2/phone-number?QUERY","error":"Not Found",
#       "statusCode":404} (method and target as received; a request without
#       the right key still gets the 401 first, as on every route).
#   "microseconds": true  every number is stored with createdAt and updatedAt
#       in microseconds: both get the same extra 0..999 us, the first four
#       bytes of sha256("vapi-mock:us:" + id) modulo 1000.  Filters and
#       sorting use the microsecond values (a filter value, which has
#       milliseconds, means that millisecond's first microsecond), while the
#       JSON prints the same text as without the switch.  Numbers that share
#       a printed millisecond (the data set has ~1 in 25 repeated createdAt
#       values and a run of 5: with --count 2500 --seed 1, 75 groups holding
#       154 numbers) then differ in storage; two extras could coincide in
#       principle (none do in that data set), and the id orders them then.
#   "ignore_sort_order": true  v2 sorts newest first whatever sortOrder
#       asks; metadata.sortOrder still echoes the request.
#   "cap_limit": N  list pages hold at most N numbers whatever limit asks:
#       v2 page p holds rows (p-1)*N .. p*N-1; metadata.itemsPerPage echoes
#       the limit asked, totalPages and hasNextPage use the real page size.
#   "no_has_next_page": true  v2 metadata without totalPages, hasNextPage
#       and sortOrder (the shape before mid-2026).
#   "minimal_metadata": true  v2 metadata holds only itemsPerPage,
#       totalItems and currentPage (the shape before 2025-08; also drops the
#       retention fields).
#   "retention_days": D  or  "retention_since": ISO  lists never return the
#       numbers created before the window start: the newest createdAt minus
#       D days (taken when the switch is set) or the given instant.  v2
#       metadata then gets "itemsBeyondRetention": true (else nothing) when
#       numbers matching the request exist before the window, and
#       "createdAtGe": window start (ISO, milliseconds) when the request has
#       no lower createdAt bound or an earlier one (compared in microseconds:
#       createdAtGt one millisecond before the start is earlier); totalItems
#       counts the window only.  GET, PATCH and
#       DELETE by id are not limited.  Setting one of the two drops the other.
#   "legacy_secrets": true  every stored object (generated, planted or
#       created by a mutation rule; not those created by POST while the
#       switch is on) shows the fields of numbers created before 2025: its
#       "server" object, if any, gets "secret", and the object ends with
#       "serverUrl" (server.url, else https://legacy-hooks.example.com/vapi/
#       followed by the id) and "serverUrlSecret".  Both secrets are the
#       first 32 hex digits of sha256("vapi-mock:legacy-secret:" + id);
#       fields a planted object already has are kept.  A PATCH that sends
#       "server" replaces it, secret and all; the serverUrl fields stay.
#       Writes that send these fields get 400 like always, e.g.
#       "server.property secret should not exist" and "property
#       serverUrlSecret should not exist".
#   "v1_order": "ASC"  v1 lists oldest first ("DESC", the default: newest
#       first).
#
# With --blackhole-port-file the mock also listens on a second port (chosen
# by the system, written to that file before --port-file is written) that
# accepts connections and then never answers (nothing is read or written):
# a server stuck in the middle of connecting.  Each connection is held
# until the peer closes it or the mock stops.  GET /__mock/stats reports the port
# ("blackhole_port", null without the option) and the connections accepted
# since the last reset ("blackhole_connections").
#
# Two more knobs shape the data set: --max-step (the largest gap in seconds
# between two consecutive createdAt values) and --newest (shift the whole
# data set by whole seconds so that the newest createdAt falls in the current
# second, "now", or in the second of a given ISO 8601 date-time).  The body
# of POST /__mock/reset takes them as "max_step" and "newest" next to "count"
# and "seed"; fields left out keep the command-line values ("newest": null
# turns the shift off).
#
# Usage:
#   python3 test/vapi_mock.py [--host 127.0.0.1] [--port 0] [--port-file FILE]
#                             [--key KEY] [--count 2500] [--seed 1]
#                             [--max-step 7200] [--newest now|ISO]
#                             [--blackhole-port-file FILE]
#
# Only the Python 3 standard library is used.

import argparse
import bisect
import datetime
import gzip
import hashlib
import http
import json
import math
import os
import random
import re
import select
import signal
import socket
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

DEFAULT_KEY = "mock-secret-key-0123456789abcdef"
DEFAULT_COUNT = 2500
DEFAULT_SEED = 1
DEFAULT_MAX_STEP = 7200            # seconds

PROVIDERS = ("byo-phone-number", "twilio", "vonage", "vapi", "telnyx")
UNKNOWN_PROVIDER = "plivo"

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
ONE_MS = datetime.timedelta(milliseconds=1)
BASE_MS = 1704067200000            # 2024-01-01T00:00:00.000Z
MAX_MS = 253402300799999           # 9999-12-31T23:59:59.999Z
MIN_MS = -62135596800000           # 0001-01-01T00:00:00.000Z

MAX_API_BODY = 1024 * 1024         # larger API request bodies get 413
MAX_CONTROL_BODY = 256 * 1024 * 1024
DISCARD_CAP = 64 * 1024 * 1024     # read and drop oversized bodies up to this
GZIP_MIN = 1024                    # compress answers larger than this
PAGE_CACHE_MAX = 512

JSON_CT = "application/json; charset=utf-8"

UNAUTHORIZED_BODY = (
    b'{"statusCode":401,"error":"Unauthorized","message":"Invalid Key. Hot tip, '
    b'you may be using the private key instead of the public key, or vice versa."}')
MALFORMED_BODY = b'{"results": [ {"id": '
E164_MSG = ("number must be a valid phone number in the E.164 format. "
            "Hot tip, you may be missing the country code (Eg. US: +1).")
PROVIDER_MSG = ("provider must be one of the following values: "
                + ", ".join(PROVIDERS))
RANGE_MSG = ("the data set does not fit in the years 1970..9999: lower count "
             "or max_step, or move newest")
NEWEST_MSG = 'newest must be "now" or an ISO 8601 date-time'
NGINX_PAGE = ("<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
              "<center><h1>{code} {phrase}</h1></center>\r\n"
              "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
ALNUM_RE = re.compile(r"^\+?[a-zA-Z0-9]+$")
ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$")
NUMBER_RE = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
HEADERS_MSG = "headers must be an object whose values are strings"
HEADER_TEXT_MSG = ("header names must be non-empty and without ':', and "
                   "names and values must not contain CR or LF")
EVERY_MSG = "every must be an integer >= 1"

DATE_PARAMS = ("createdAtGt", "createdAtLt", "createdAtGe", "createdAtLe",
               "updatedAtGt", "updatedAtLt", "updatedAtGe", "updatedAtLe")
V1_PARAMS = ("limit",) + DATE_PARAMS
V2_PARAMS = ("search", "page", "sortOrder", "sortBy", "limit") + DATE_PARAMS

BOOL_SWITCHES = ("no_v2", "microseconds", "ignore_sort_order",
                 "no_has_next_page", "minimal_metadata", "legacy_secrets")
SWITCHES = ("reject_params", "no_v2", "microseconds", "ignore_sort_order",
            "cap_limit", "no_has_next_page", "minimal_metadata",
            "retention_days", "retention_since", "legacy_secrets", "v1_order")
MAX_RETENTION_DAYS = 365000
LEGACY_URL = "https://legacy-hooks.example.com/vapi/%s"

FAULT_KINDS = ("latency", "status", "malformed", "truncate", "cut", "stall",
               "html", "content_type", "body", "corrupt")

NONASCII_NAMES = ("Zürich Büro {n}", "São Paulo Filial {n}", "Köln Süd {n}",
                  "東京オフィス {n}", "Café ☕ {n}", "Zoë Nuñez {n}",
                  "Αθήνα γραφείο {n}", "Hotline 📞 {n}")
QUOTE_NAME = 'Front "Desk" \\ Annex'
QUOTE_INDEX = 3

# Key order of generated objects, per provider (deliberately not alphabetical
# and not the same for every provider).
KEY_ORDER = {
    "byo-phone-number": (
        "id", "orgId", "provider", "name", "number", "numberE164CheckEnabled",
        "credentialId", "assistantId", "squadId", "workflowId", "server",
        "fallbackDestination", "hooks", "status", "someFutureField",
        "createdAt", "updatedAt"),
    "twilio": (
        "id", "orgId", "assistantId", "squadId", "workflowId", "number",
        "createdAt", "updatedAt", "twilioAccountSid", "twilioAuthToken",
        "twilioApiKey", "twilioApiSecret", "name", "server",
        "fallbackDestination", "hooks", "smsEnabled", "status",
        "someFutureField", "provider"),
    "vonage": (
        "id", "orgId", "provider", "number", "credentialId", "name", "status",
        "assistantId", "squadId", "workflowId", "createdAt", "updatedAt",
        "server", "fallbackDestination", "hooks", "someFutureField"),
    "vapi": (
        "id", "orgId", "provider", "status", "number", "sipUri",
        "authentication", "numberDesiredAreaCode", "name", "assistantId",
        "squadId", "workflowId", "server", "fallbackDestination", "hooks",
        "createdAt", "updatedAt", "someFutureField"),
    "telnyx": (
        "provider", "id", "orgId", "createdAt", "updatedAt", "number",
        "credentialId", "name", "assistantId", "squadId", "workflowId",
        "status", "server", "fallbackDestination", "hooks", "someFutureField"),
    UNKNOWN_PROVIDER: (
        "id", "orgId", "provider", "number", "credentialId", "plivoAuthId",
        "name", "status", "assistantId", "squadId", "workflowId", "server",
        "fallbackDestination", "hooks", "someFutureField", "createdAt",
        "updatedAt"),
}

# Properties of the Create*PhoneNumberDTO schemas (order of the spec).
COMMON_DTO = ("name", "assistantId", "workflowId", "squadId", "server")
CREATE_FIELDS = {
    "byo-phone-number": ("fallbackDestination", "hooks", "provider",
                         "numberE164CheckEnabled", "number", "credentialId")
                        + COMMON_DTO,
    "twilio": ("fallbackDestination", "hooks", "provider", "smsEnabled",
               "number", "twilioAccountSid", "twilioAuthToken", "twilioApiKey",
               "twilioApiSecret") + COMMON_DTO,
    "vonage": ("fallbackDestination", "hooks", "provider", "number",
               "credentialId") + COMMON_DTO,
    "vapi": ("fallbackDestination", "hooks", "provider",
             "numberDesiredAreaCode", "sipUri", "authentication") + COMMON_DTO,
    "telnyx": ("fallbackDestination", "hooks", "provider", "number",
               "credentialId") + COMMON_DTO,
}
CREATE_REQUIRED = {
    "byo-phone-number": ("credentialId",),
    "twilio": ("number", "twilioAccountSid"),
    "vonage": ("number", "credentialId"),
    "vapi": (),
    "telnyx": ("number", "credentialId"),
}
# Update*PhoneNumberDTO: the create fields minus numberDesiredAreaCode.
UPDATE_FIELDS = {p: tuple(f for f in CREATE_FIELDS[p]
                          if f != "numberDesiredAreaCode")
                 for p in PROVIDERS}
UPDATE_FIELDS[UNKNOWN_PROVIDER] = UPDATE_FIELDS["vonage"]
BUY_FIELDS = ("areaCode", "name", "assistantId", "squadId", "server",
              "fallbackDestination")

STRING_FIELDS = ("credentialId", "assistantId", "workflowId", "squadId",
                 "twilioAccountSid", "twilioAuthToken", "twilioApiKey",
                 "twilioApiSecret", "sipUri")
BOOL_FIELDS = ("numberE164CheckEnabled", "smsEnabled")

SERVER_FIELDS = ("timeoutSeconds", "credentialId", "staticIpAddressesEnabled",
                 "encryptedPaths", "url", "headers", "backoffPlan")
DEST_NUMBER_FIELDS = ("type", "number", "numberE164CheckEnabled", "extension",
                      "callerId", "message", "description", "transferPlan")
DEST_SIP_FIELDS = ("type", "sipUri", "callerId", "sipHeaders", "message",
                   "description", "transferPlan")
ENDED_REASONS = ("assistant-request-failed", "assistant-request-returned-error",
                 "assistant-request-returned-unspeakable-error",
                 "assistant-request-returned-invalid-assistant",
                 "assistant-request-returned-no-assistant",
                 "assistant-request-returned-forwarding-phone-number")


# --------------------------------------------------------------------------
# Time, ids and JSON helpers
# --------------------------------------------------------------------------

def now_ms():
    """Current wall-clock time in epoch milliseconds."""
    return int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)


def fmt_ts(ms, with_ms=True):
    """Format epoch milliseconds as ISO 8601 UTC, with or without '.mmm'."""
    dt = EPOCH + datetime.timedelta(milliseconds=ms)
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % (dt.year, dt.month, dt.day,
                                              dt.hour, dt.minute, dt.second)
    if with_ms:
        return "%s.%03dZ" % (text, dt.microsecond // 1000)
    return text + "Z"


def parse_iso(text):
    """Parse an ISO 8601 date or date-time into epoch ms (None if invalid).

    Fractions are truncated to milliseconds; a missing zone means UTC."""
    if type(text) is not str:
        return None
    m = ISO_RE.match(text)
    if not m:
        return None
    year, month, day, hour, minute, sec, frac, zone = m.groups()
    try:
        dt = datetime.datetime(int(year), int(month), int(day),
                               int(hour or 0), int(minute or 0), int(sec or 0),
                               tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    ms = (dt - EPOCH) // ONE_MS
    if frac:
        ms += int((frac + "00")[:3])
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        hours = int(digits[:2])
        minutes = int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            return None
        ms -= sign * (hours * 60 + minutes) * 60000
    return ms


def resolve_newest(newest):
    """Anchor in epoch ms for a `newest` setting: None, "now" or ISO 8601.

    None stays None; "now" is read from the wall clock at each call.  Raises
    ValueError for anything else."""
    if newest is None:
        return None
    if newest == "now":
        return now_ms()
    ms = parse_iso(newest)
    if ms is None:
        raise ValueError(NEWEST_MSG)
    return ms


def rng_uuid(rng):
    """A version-4 layout UUID drawn from a seeded random.Random.

    Same result as str(uuid.UUID(int=rng.getrandbits(128), version=4))."""
    x = rng.getrandbits(128)
    x = (x & ~(0xc000 << 48)) | (0x8000 << 48)
    x = (x & ~(0xf000 << 64)) | (4 << 76)
    h = "%032x" % x
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def derived_uuid(seed, tag, counter):
    """A version-4 layout UUID derived from the seed, a tag and a counter."""
    digest = hashlib.sha256(("vapi-mock:%s:%s:%s" % (seed, tag, counter))
                            .encode("utf-8")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def dumps(value):
    """Compact JSON text (raw UTF-8, key order kept) as bytes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) \
        .encode("utf-8", "surrogatepass")


def phrase(status):
    """The standard reason phrase of an HTTP status code."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# --------------------------------------------------------------------------
# Synthetic data set
# --------------------------------------------------------------------------

def _hex(rng, nbits):
    """Random lowercase hex string of nbits/4 digits."""
    return "%0*x" % (nbits // 4, rng.getrandbits(nbits))


def _alnum(rng, length, alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz0123456789"):
    """Random alphanumeric string of the given length."""
    return "".join(rng.choice(alphabet) for _ in range(length))


def _unique_e164(rng, used):
    """A random +1 NANP-looking E.164 number not yet in `used` (added)."""
    while True:
        text = "+1%03d%03d%04d" % (rng.randint(201, 989), rng.randint(200, 999),
                                   rng.randint(0, 9999))
        if text not in used:
            used.add(text)
            return text


def _unique_plain(rng, used):
    """A random non-E.164 (but alphanumeric) number not yet in `used`."""
    while True:
        style = rng.randrange(3)
        if style == 0:
            text = "%d" % rng.randint(1000, 99999999)
        elif style == 1:
            text = "+00%d" % rng.randint(10 ** 8, 10 ** 10)
        else:
            text = "ext%d" % rng.randint(10, 99999)
        if text not in used:
            used.add(text)
            return text


def _server(rng, index):
    """A webhook `server` object."""
    server = {"url": "https://hooks.example.com/vapi/%d" % index,
              "timeoutSeconds": rng.choice((10, 20, 30))}
    if rng.random() < 0.4:
        server["headers"] = {"X-Webhook-Secret": _hex(rng, 64)}
    return server


def _destination(rng, index):
    """A fallbackDestination: a number or a SIP transfer destination."""
    if rng.random() < 0.6:
        return {"type": "number",
                "number": "+1415555%04d" % rng.randint(0, 9999),
                "message": "Transferring you to the front desk."}
    return {"type": "sip", "sipUri": "sip:fallback%d@pbx.example.com" % index}


def _hooks(rng):
    """A hooks array with a call.ringing or call.ending hook (or both)."""
    ringing = {"on": "call.ringing",
               "filters": [{"type": "startsWith", "key": "number",
                            "startsWith": ["1415", "1628"]}],
               "do": [{"type": "say", "exact": "Please hold, connecting you."}]}
    ending = {"on": "call.ending",
              "filters": [{"type": "oneOf", "key": "call.endedReason",
                           "oneOf": ["assistant-request-failed",
                                     "assistant-request-returned-error"]}],
              "do": {"type": "transfer",
                     "destination": {"type": "number",
                                     "number": "+14155550100"}}}
    pick = rng.randrange(3)
    if pick == 0:
        return [ringing]
    if pick == 1:
        return [ending]
    return [ringing, ending]


def build_number(rng, index, provider, org_id, number_id, created_ms,
                 updated_ms, whole_seconds, used):
    """Build one synthetic phone-number object (dict in provider key order).

    `used` is the set of numbers already handed out (kept unique)."""
    v = {"id": number_id, "orgId": org_id, "provider": provider,
         "createdAt": fmt_ts(created_ms, not whole_seconds),
         "updatedAt": fmt_ts(updated_ms, not whole_seconds)}

    r = rng.random()
    if r >= 0.02:
        v["status"] = ("blocked" if r < 0.06 else
                       "activating" if r < 0.16 else "active")

    r = rng.random()
    if index == QUOTE_INDEX:
        v["name"] = QUOTE_NAME
    elif index % 101 == 17:
        v["name"] = NONASCII_NAMES[(index // 101) % len(NONASCII_NAMES)] \
            .format(n=index)
    elif r < 0.05:
        pass
    elif r < 0.075:
        v["name"] = None
    else:
        v["name"] = "Line %05d" % index

    r = rng.random()
    if r < 0.75:
        v["assistantId"] = rng_uuid(rng)
    elif r >= 0.87:
        v["assistantId"] = None
    if rng.random() < 0.05:
        v["squadId"] = rng_uuid(rng)
    if rng.random() < 0.04:
        v["workflowId"] = rng_uuid(rng)

    if provider == "byo-phone-number":
        v["credentialId"] = rng_uuid(rng)
        r = rng.random()
        if r < 0.05:
            pass
        elif r < 0.20:
            v["number"] = _unique_plain(rng, used)
            v["numberE164CheckEnabled"] = False
        else:
            v["number"] = _unique_e164(rng, used)
            r = rng.random()
            if r < 0.33:
                v["numberE164CheckEnabled"] = True
            elif r < 0.5:
                v["numberE164CheckEnabled"] = False
    elif provider == "twilio":
        v["number"] = _unique_e164(rng, used)
        v["twilioAccountSid"] = "AC" + _hex(rng, 128)
        v["twilioAuthToken"] = _hex(rng, 128)
        if rng.random() < 0.3:
            v["twilioApiKey"] = "SK" + _hex(rng, 128)
            v["twilioApiSecret"] = _alnum(rng, 32)
        r = rng.random()
        if r < 0.4:
            v["smsEnabled"] = True
        elif r < 0.6:
            v["smsEnabled"] = False
    elif provider in ("vonage", "telnyx"):
        v["number"] = _unique_e164(rng, used)
        v["credentialId"] = rng_uuid(rng)
    elif provider == "vapi":
        if rng.random() < 0.25:
            v["sipUri"] = "sip:line%d@sip.vapi.ai" % index
            if rng.random() < 0.6:
                auth = {"realm": "sip.vapi.ai"} if rng.random() < 0.7 else {}
                auth["username"] = "line%d-%s" % (index, _alnum(rng, 16))
                auth["password"] = _alnum(rng, 24)
                v["authentication"] = auth
        else:
            v["number"] = _unique_e164(rng, used)
            if rng.random() < 0.5:
                v["numberDesiredAreaCode"] = v["number"][2:5]
            if rng.random() < 0.1:
                v["sipUri"] = "sip:line%d@sip.vapi.ai" % index
    else:
        v["number"] = _unique_e164(rng, used)
        v["credentialId"] = rng_uuid(rng)
        v["plivoAuthId"] = "MA" + _alnum(rng, 18, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                  "0123456789")

    if rng.random() < 0.2:
        v["server"] = _server(rng, index)
    if rng.random() < 0.15:
        v["fallbackDestination"] = _destination(rng, index)
    if rng.random() < 0.08:
        v["hooks"] = _hooks(rng)
    if rng.random() < 1 / 30:
        v["someFutureField"] = {"enabled": True, "level": 3}

    obj = {k: v[k] for k in KEY_ORDER[provider] if k in v}
    for k in v:
        if k not in obj:
            obj[k] = v[k]
    return obj


def generate_dataset(count, seed, max_step=DEFAULT_MAX_STEP, anchor_ms=None):
    """Generate (org_id, [(object, created_ms, updated_ms)]), oldest first.

    createdAt starts at 2024-01-01T00:00:00Z and grows by 1..max_step s plus
    random ms; ~1 in 25 repeats the previous value; a run of 5 equal values
    starts at the multiple of 7 nearest below count/2; index % 7 == 0 means a
    whole-second timestamp written without milliseconds.

    With anchor_ms, every createdAt and updatedAt is then moved by one
    constant whole-second offset that puts the newest createdAt inside the
    second of anchor_ms (whole-second values stay whole).  The random draws
    do not depend on anchor_ms.  Raises ValueError when a timestamp would
    fall outside the years 1970..9999."""
    try:
        org_id, objs = _generate(count, seed, max_step)
    except OverflowError:
        raise ValueError(RANGE_MSG) from None
    if objs and anchor_ms is not None:
        offset = anchor_ms // 1000 * 1000 - objs[-1][1] // 1000 * 1000
        objs = [(obj, t + offset, u + offset) for obj, t, u in objs]
        if objs[0][1] < 0 or max(u for _, _, u in objs) > MAX_MS:
            raise ValueError(RANGE_MSG)
        for i, (obj, t, u) in enumerate(objs):
            whole = i % 7 == 0
            obj["createdAt"] = fmt_ts(t, not whole)
            obj["updatedAt"] = fmt_ts(u, not whole)
    return org_id, objs


def _generate(count, seed, max_step):
    """The random part of generate_dataset (no anchoring, no range check)."""
    rng = random.Random(seed)
    org_id = rng_uuid(rng)
    used = set()
    run_start = (count // 2) // 7 * 7 if count >= 5 else -10
    objs = []
    t = BASE_MS
    for i in range(count):
        whole = i % 7 == 0
        if i > 0:
            if run_start < i <= run_start + 4:
                tie = True
            else:
                tie = rng.random() < 1 / 25
                if i in (run_start, run_start + 5) or (whole and t % 1000):
                    tie = False
            if not tie:
                t += rng.randint(1, max_step) * 1000 + rng.randint(0, 999)
                if whole:
                    t -= t % 1000
        if rng.random() < 0.35:
            u = t
        else:
            u = t + rng.randint(1000, 90 * 86400 * 1000)
            if whole:
                u -= u % 1000
        r = rng.random()
        provider = (UNKNOWN_PROVIDER if r < 0.005
                    else PROVIDERS[rng.randrange(len(PROVIDERS))])
        objs.append((build_number(rng, i, provider, org_id, rng_uuid(rng),
                                  t, u, whole, used), t, u))
    return org_id, objs


# --------------------------------------------------------------------------
# Request validation (class-validator style messages)
# --------------------------------------------------------------------------

def is_num(value):
    """True for JSON numbers (not booleans)."""
    return type(value) in (int, float)


def _check_len(errs, path, value, lo=None, hi=None):
    """Append min/max length errors for a string value."""
    if hi is not None and len(value) > hi:
        errs.append("%s must be shorter than or equal to %d characters"
                    % (path, hi))
    if lo is not None and len(value) < lo:
        errs.append("%s must be longer than or equal to %d characters"
                    % (path, lo))


def _check_string(errs, path, value, lo=None, hi=None):
    """Validate a string (with optional length limits); False if not one."""
    if type(value) is not str:
        errs.append("%s must be a string" % path)
        return False
    _check_len(errs, path, value, lo, hi)
    return True


def _check_range(errs, path, value, lo, hi):
    """Validate a JSON number inside [lo, hi]."""
    if not is_num(value):
        errs.append("%s must be a number conforming to the specified "
                    "constraints" % path)
        return
    if value > hi:
        errs.append("%s must not be greater than %s" % (path, hi))
    if value < lo:
        errs.append("%s must not be less than %s" % (path, lo))


def _check_object(errs, prefix, name, value):
    """Check that a nested value is an object; False (and an error) if not."""
    if type(value) is not dict:
        errs.append("%snested property %s must be either object or array"
                    % (prefix, name))
        return False
    return True


def _whitelist(errs, prefix, value, allowed):
    """forbidNonWhitelisted: one error per unknown property."""
    for key in value:
        if key not in allowed:
            errs.append("%sproperty %s should not exist" % (prefix, key))


def validate_server(errs, path, value):
    """Validate a Server object (webhook target)."""
    if not _check_object(errs, "", path, value):
        return
    p = path + "."
    _whitelist(errs, p, value, SERVER_FIELDS)
    for key in SERVER_FIELDS:
        if key not in value or value[key] is None:
            continue
        item = value[key]
        if key == "timeoutSeconds":
            _check_range(errs, p + key, item, 1, 300)
        elif key in ("credentialId", "url"):
            _check_string(errs, p + key, item)
        elif key == "staticIpAddressesEnabled":
            if type(item) is not bool:
                errs.append("%s%s must be a boolean value" % (p, key))
        elif key == "encryptedPaths":
            if type(item) is not list:
                errs.append("%s%s must be an array" % (p, key))
            elif any(type(x) is not str for x in item):
                errs.append("each value in %s%s must be a string" % (p, key))
        elif key == "headers":
            if type(item) is not dict:
                errs.append("%s%s must be an object" % (p, key))
        elif key == "backoffPlan":
            if not _check_object(errs, p, key, item):
                continue
            bp = p + key + "."
            _whitelist(errs, bp, item, ("type", "maxRetries",
                                        "baseDelaySeconds",
                                        "excludedStatusCodes"))
            if item.get("type") not in ("fixed", "exponential"):
                errs.append("%stype must be one of the following values: "
                            "fixed, exponential" % bp)
            _check_range(errs, bp + "maxRetries", item.get("maxRetries"), 0, 10)
            _check_range(errs, bp + "baseDelaySeconds",
                         item.get("baseDelaySeconds"), 0, 10)
            if item.get("excludedStatusCodes") is not None and \
                    type(item["excludedStatusCodes"]) is not list:
                errs.append("%sexcludedStatusCodes must be an array" % bp)


def validate_auth(errs, path, value):
    """Validate a SipAuthentication object."""
    if not _check_object(errs, "", path, value):
        return
    p = path + "."
    _whitelist(errs, p, value, ("realm", "username", "password"))
    if value.get("realm") is not None:
        _check_string(errs, p + "realm", value["realm"])
    for key in ("username", "password"):
        _check_string(errs, p + key, value.get(key), 20, 40)


def validate_destination(errs, prefix, name, value):
    """Validate a TransferDestinationNumber / TransferDestinationSip."""
    if not _check_object(errs, prefix, name, value):
        return
    p = prefix + name + "."
    kind = value.get("type")
    if kind == "number":
        _whitelist(errs, p, value, DEST_NUMBER_FIELDS)
        if _check_string(errs, p + "number", value.get("number"), 3, 40):
            if value.get("numberE164CheckEnabled", True) is not False and \
                    not E164_RE.match(value["number"]):
                errs.append(p + E164_MSG)
        if value.get("numberE164CheckEnabled") is not None and \
                type(value["numberE164CheckEnabled"]) is not bool:
            errs.append("%snumberE164CheckEnabled must be a boolean value" % p)
        if value.get("extension") is not None:
            _check_string(errs, p + "extension", value["extension"], 1, 10)
    elif kind == "sip":
        _whitelist(errs, p, value, DEST_SIP_FIELDS)
        _check_string(errs, p + "sipUri", value.get("sipUri"))
        if value.get("sipHeaders") is not None and \
                type(value["sipHeaders"]) is not dict:
            errs.append("%ssipHeaders must be an object" % p)
    else:
        errs.append("%stype must be one of the following values: number, sip"
                    % p)
        return
    if value.get("callerId") is not None:
        _check_string(errs, p + "callerId", value["callerId"], None, 40)
    if value.get("description") is not None:
        _check_string(errs, p + "description", value["description"])
    msg = value.get("message")
    if msg is not None and type(msg) not in (str, dict):
        errs.append("%smessage must be a string or an object" % p)
    if value.get("transferPlan") is not None:
        _check_object(errs, p, "transferPlan", value["transferPlan"])


def _validate_action(errs, prefix, name, value):
    """Validate a hook action (transfer or say)."""
    if not _check_object(errs, prefix, name, value):
        return
    p = prefix + name + "."
    kind = value.get("type")
    if kind == "say":
        _whitelist(errs, p, value, ("type", "exact"))
        _check_string(errs, p + "exact", value.get("exact"), None, 4000)
    elif kind == "transfer":
        _whitelist(errs, p, value, ("type", "destination"))
        if value.get("destination") is not None:
            validate_destination(errs, p, "destination", value["destination"])
    else:
        errs.append("%stype must be one of the following values: transfer, say"
                    % p)


def validate_hooks(errs, path, value):
    """Validate the hooks array (call.ringing / call.ending hooks)."""
    if type(value) is not list:
        errs.append("%s must be an array" % path)
        return
    for i, hook in enumerate(value):
        if not _check_object(errs, path + ".", str(i), hook):
            continue
        p = "%s.%d." % (path, i)
        on = hook.get("on")
        if on not in ("call.ringing", "call.ending"):
            errs.append("%son must be one of the following values: "
                        "call.ringing, call.ending" % p)
            continue
        _whitelist(errs, p, hook, ("on", "filters", "do"))
        if on == "call.ringing":
            actions = hook.get("do")
            if type(actions) is not list:
                errs.append("%sdo must be an array" % p)
            else:
                for j, action in enumerate(actions):
                    _validate_action(errs, p + "do.", str(j), action)
        elif hook.get("do") is not None:
            _validate_action(errs, p, "do", hook["do"])
        filters = hook.get("filters")
        if filters is None:
            continue
        if type(filters) is not list:
            errs.append("%sfilters must be an array" % p)
            continue
        for j, flt in enumerate(filters):
            if not _check_object(errs, p + "filters.", str(j), flt):
                continue
            fp = "%sfilters.%d." % (p, j)
            if on == "call.ringing":
                _whitelist(errs, fp, flt, ("type", "key", "startsWith"))
                if flt.get("type") != "startsWith":
                    errs.append("%stype must be one of the following values: "
                                "startsWith" % fp)
                if flt.get("key") != "number":
                    errs.append("%skey must be one of the following values: "
                                "number" % fp)
                sw = flt.get("startsWith")
                if type(sw) is not list or \
                        any(type(x) is not str or len(x) > 20 for x in sw):
                    errs.append("%sstartsWith must be an array of strings of "
                                "at most 20 characters" % fp)
            else:
                _whitelist(errs, fp, flt, ("type", "key", "oneOf"))
                if flt.get("type") != "oneOf":
                    errs.append("%stype must be one of the following values: "
                                "oneOf" % fp)
                if flt.get("key") != "call.endedReason":
                    errs.append("%skey must be one of the following values: "
                                "call.endedReason" % fp)
                one_of = flt.get("oneOf")
                if type(one_of) is not list or \
                        any(x not in ENDED_REASONS for x in one_of):
                    errs.append("%soneOf must be one of the following values: "
                                "%s" % (fp, ", ".join(ENDED_REASONS)))


def _validate_number(errs, provider, value, e164_check):
    """Validate the `number` field for the given provider."""
    if not _check_string(errs, "number", value):
        return
    if provider == "byo-phone-number":
        _check_len(errs, "number", value, 3, 40)
        if e164_check:
            if not E164_RE.match(value):
                errs.append(E164_MSG)
        elif not ALNUM_RE.match(value):
            errs.append("number must match /^\\+?[a-zA-Z0-9]+$/ regular "
                        "expression")
    elif not E164_RE.match(value):
        errs.append(E164_MSG)


def validate_body(body, provider, allowed, required, stored=None):
    """Validate a create/update body against one provider's DTO.

    Returns the list of messages: whitelist errors first, then the fields in
    DTO order.  JSON null counts as absent for optional fields."""
    errs = []
    _whitelist(errs, "", body, allowed)
    e164_check = True
    if "number" in body and body["number"] is not None:
        flag = body.get("numberE164CheckEnabled")
        if type(flag) is not bool:
            flag = (stored or {}).get("numberE164CheckEnabled")
        e164_check = flag is not False
    for key in allowed:
        value = body.get(key)
        if value is None:
            if key in required:
                errs.append("%s must be a string" % key)
            continue
        if key == "provider":
            continue
        if key == "name":
            _check_string(errs, key, value, None, 40)
        elif key == "number":
            _validate_number(errs, provider, value, e164_check)
        elif key == "numberDesiredAreaCode" or key == "areaCode":
            if _check_string(errs, key, value, 3, 3) and len(value) == 3 \
                    and not value.isdigit():
                errs.append("%s must be a number string" % key)
        elif key in STRING_FIELDS:
            _check_string(errs, key, value)
        elif key in BOOL_FIELDS:
            if type(value) is not bool:
                errs.append("%s must be a boolean value" % key)
        elif key == "server":
            validate_server(errs, key, value)
        elif key == "authentication":
            validate_auth(errs, key, value)
        elif key == "fallbackDestination":
            validate_destination(errs, "", key, value)
        elif key == "hooks":
            validate_hooks(errs, key, value)
    return errs


def _parse_query_number(text):
    """Parse a query-string number like JavaScript Number(); None if NaN."""
    if not NUMBER_RE.match(text):
        return None
    return float(text)


def validate_list_query(query, v2, rejected=()):
    """Validate a list query string; returns (params dict, error list).

    Parameters named in `rejected` count as unknown; their messages come
    first, in the order of `rejected`."""
    allowed = V2_PARAMS if v2 else V1_PARAMS
    pairs = parse_qsl(query, keep_blank_values=True)
    seen = {}
    present = {key for key, _ in pairs}
    errs = ["property %s should not exist" % key for key in rejected
            if key in present]
    for key, value in pairs:
        if key in rejected:
            continue
        if key not in allowed:
            msg = "property %s should not exist" % key
            if msg not in errs:
                errs.append(msg)
            continue
        seen.setdefault(key, []).append(value)
    out = {"limit": 100, "page": 1, "sortOrder": "DESC", "search": None}
    for key in allowed:
        if key not in seen:
            continue
        values = seen[key]
        value = values[0] if len(values) == 1 else None
        if key in ("limit", "page"):
            num = _parse_query_number(value) if value is not None else None
            if num is None:
                errs.append("%s must be a number conforming to the specified "
                            "constraints" % key)
                continue
            lo = 0 if key == "limit" else 1
            if key == "limit" and num > 1000:
                errs.append("limit must not be greater than 1000")
            elif num < lo:
                errs.append("%s must not be less than %d" % (key, lo))
            elif num != int(num):
                errs.append("%s must be an integer number" % key)
            else:
                out[key] = int(num)
        elif key == "sortOrder":
            if value not in ("ASC", "DESC"):
                errs.append("sortOrder must be one of the following values: "
                            "ASC, DESC")
            else:
                out[key] = value
        elif key == "sortBy":
            if value not in ("createdAt", "duration", "cost"):
                errs.append("sortBy must be one of the following values: "
                            "createdAt, duration, cost")
        elif key == "search":
            if value is None:
                errs.append("search must be a string")
            elif len(value) > 100:
                errs.append("search must be shorter than or equal to 100 "
                            "characters")
            else:
                out[key] = value
        else:
            ms = parse_iso(value) if value is not None else None
            if ms is None:
                errs.append("%s must be a valid ISO 8601 date string" % key)
            else:
                out[key] = ms
    return out, errs


def _bounds(params, prefix):
    """Inclusive [lo, hi] microsecond bounds from the Gt/Ge/Lt/Le filters.

    The filter values are milliseconds; each stands for the first
    microsecond of its millisecond."""
    lo = hi = None
    if prefix + "Gt" in params:
        lo = params[prefix + "Gt"] * 1000 + 1
    if prefix + "Ge" in params:
        value = params[prefix + "Ge"] * 1000
        lo = value if lo is None else max(lo, value)
    if prefix + "Lt" in params:
        hi = params[prefix + "Lt"] * 1000 - 1
    if prefix + "Le" in params:
        value = params[prefix + "Le"] * 1000
        hi = value if hi is None else min(hi, value)
    return lo, hi


def check_behaviour(data):
    """Validate a POST /__mock/behaviour body; returns (changes, message).

    changes maps every switch named in the body to its new value, None
    meaning off; message is None when the body is valid."""
    if type(data) is not dict:
        return None, "expected a JSON object of behaviour switches"
    if data.get("retention_days") is not None and \
            data.get("retention_since") is not None:
        return None, "retention_days and retention_since exclude each other"
    changes = {}
    for name, value in data.items():
        if name not in SWITCHES:
            return None, ("unknown behaviour switch %s (known: %s)"
                          % (name, ", ".join(SWITCHES)))
        if value is None:
            changes[name] = None
        elif name in BOOL_SWITCHES:
            if type(value) is not bool:
                return None, "%s must be true or false" % name
            changes[name] = value or None
        elif name == "reject_params":
            if type(value) is not list or \
                    any(type(x) is not str or x not in V2_PARAMS
                        for x in value):
                return None, ("reject_params must be an array of list query "
                              "parameter names: " + ", ".join(V2_PARAMS))
            names = []
            for x in value:
                if x not in names:
                    names.append(x)
            changes[name] = names or None
        elif name == "cap_limit":
            if type(value) is not int or value < 1:
                return None, "cap_limit must be an integer >= 1"
            changes[name] = value
        elif name == "retention_days":
            if not is_num(value) or not 0 <= value <= MAX_RETENTION_DAYS:
                return None, ("retention_days must be a number of days in "
                              "0..%d" % MAX_RETENTION_DAYS)
            changes[name] = value
        elif name == "retention_since":
            ms = parse_iso(value)
            if ms is None or not MIN_MS <= ms <= MAX_MS:
                return None, "retention_since must be an ISO 8601 date-time"
            changes[name] = value
        elif name == "v1_order":
            if value not in ("ASC", "DESC"):
                return None, "v1_order must be ASC or DESC"
            changes[name] = value
    return changes, None


def micro_extra(key):
    """Extra microseconds (0..999) of a number under "microseconds".

    The first four bytes of sha256("vapi-mock:us:" + key), modulo 1000."""
    digest = hashlib.sha256(("vapi-mock:us:%s" % key)
                            .encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") % 1000


def legacy_fields(key, obj):
    """The pre-2025 fields shown for a stored object under "legacy_secrets".

    Returns None for a non-object, else {"secret": for server.secret (None
    without a server object), "serverUrl": ..., "serverUrlSecret": ...}."""
    if type(obj) is not dict:
        return None
    secret = hashlib.sha256(("vapi-mock:legacy-secret:%s" % key)
                            .encode("utf-8", "surrogatepass")).hexdigest()[:32]
    server = obj.get("server")
    url = server.get("url") if type(server) is dict else None
    if type(url) is not str:
        url = LEGACY_URL % key
    return {"secret": secret if type(server) is dict else None,
            "serverUrl": url, "serverUrlSecret": secret}


# --------------------------------------------------------------------------
# The store: numbers, sorted indexes, request log, faults, mutations
# --------------------------------------------------------------------------

class Entry:
    """One stored number with its cached serialization and sort keys.

    ms/upd_ms are the printed createdAt/updatedAt in milliseconds; us/upd_us
    the stored values in microseconds (ms * 1000 + extra, extra being 0
    unless the "microseconds" switch is on).  legacy holds the pre-2025
    fields shown under "legacy_secrets" (see legacy_fields), else None."""
    __slots__ = ("key", "obj", "raw", "ms", "upd_ms", "search", "text",
                 "extra", "us", "upd_us", "legacy")

    def __init__(self, key, obj, ms=None, upd_ms=None):
        """Wrap a stored object; `key` is its id (or a synthetic key).

        ms/upd_ms may be passed when already known (skips parsing)."""
        self.key = key
        self.obj = obj
        if ms is None and type(obj) is dict:
            ms = parse_iso(obj.get("createdAt"))
        self.ms = ms if ms is not None else 0
        self.extra = 0
        self.us = self.ms * 1000
        self.legacy = None
        self.refresh(upd_ms)

    def set_extra(self, extra):
        """Set the extra microseconds of both timestamps (not while the
        entry is in a sorted index)."""
        self.extra = extra
        self.us = self.ms * 1000 + extra
        self.upd_us = self.upd_ms * 1000 + extra

    def view(self):
        """The object as answered: the stored one plus any legacy fields."""
        obj, legacy = self.obj, self.legacy
        if legacy is None or type(obj) is not dict:
            return obj
        view = dict(obj)
        server = view.get("server")
        if legacy["secret"] is not None and type(server) is dict and \
                "secret" not in server:
            view["server"] = dict(server, secret=legacy["secret"])
        for key in ("serverUrl", "serverUrlSecret"):
            if key not in view:
                view[key] = legacy[key]
        return view

    def refresh(self, upd_ms=None):
        """Recompute the cached JSON bytes and the derived filter values."""
        obj = self.obj
        self.raw = dumps(self.view())
        if type(obj) is dict:
            upd = upd_ms if upd_ms is not None else parse_iso(obj.get("updatedAt"))
            self.upd_ms = upd if upd is not None else 0
            self.search = tuple(obj[k].lower() for k in ("name", "number", "sipUri")
                                if type(obj.get(k)) is str)
        else:
            self.upd_ms = 0
            self.search = ()
        self.upd_us = self.upd_ms * 1000 + self.extra
        # All searchable fields in one string: a fast first test.
        self.text = "\n".join(self.search)


class Store:
    """All mutable mock state, guarded by one lock."""

    def __init__(self, key, count, seed, max_step=DEFAULT_MAX_STEP,
                 newest=None):
        """Create the store and generate the initial data set.

        The arguments are also the defaults of later resets; raises
        ValueError when they do not describe a valid data set."""
        self.lock = threading.Lock()
        self.key = key
        self.default_count = count
        self.default_seed = seed
        self.default_max_step = max_step
        self.default_newest = newest
        self.conn_counter = 0
        self.blackhole_connections = 0
        self.version = 0
        self.reset(count, seed, max_step, newest)

    def reset(self, count, seed, max_step=DEFAULT_MAX_STEP, newest=None):
        """Regenerate the data; clear log, faults, mutations, counters.

        `newest` is None, "now" or an ISO 8601 date-time (see
        generate_dataset).  Raises ValueError, leaving everything as it was,
        when the data set cannot be built."""
        org_id, objs = generate_dataset(count, seed, max_step,
                                        resolve_newest(newest))
        self.count = count
        self.seed = seed
        self.max_step = max_step
        self.newest = newest
        self.org_id = org_id
        self.entries = {}
        for obj, ms, upd_ms in objs:
            self.entries[obj["id"]] = Entry(obj["id"], obj, ms, upd_ms)
        self.behaviour = {}
        self.retention_ms = None
        self.reindex()
        self.log = []
        self.seq = 0
        self.faults = []
        self.mutation_rules = []
        self.mut_created = []
        self.mut_deleted = []
        self.create_counter = 0
        self.planted_counter = 0
        self.conn_counter = 0
        self.blackhole_connections = 0
        self.touch()

    def touch(self):
        """Note a data change: drop every cached page."""
        self.version += 1
        self.page_cache = {}

    # -- index maintenance -------------------------------------------------

    def reindex(self):
        """Rebuild both sorted indexes from the map.

        They hold (us, key, entry) and (-us, key, entry); keys are unique,
        so tuple comparison never reaches the entry."""
        self.asc = sorted((e.us, e.key, e) for e in self.entries.values())
        self.desc = sorted((-e.us, e.key, e) for e in self.entries.values())

    def insert(self, entry, fresh=False):
        """Add an entry to the map and both sorted indexes.

        The behaviour switches in force shape it first: its extra
        microseconds and, unless `fresh` (created through the API), its
        legacy fields."""
        if self.behaviour.get("microseconds"):
            entry.set_extra(micro_extra(entry.key))
        if self.behaviour.get("legacy_secrets") and not fresh:
            entry.legacy = legacy_fields(entry.key, entry.obj)
            entry.refresh()
        self.entries[entry.key] = entry
        bisect.insort(self.asc, (entry.us, entry.key, entry))
        bisect.insort(self.desc, (-entry.us, entry.key, entry))

    def remove(self, key):
        """Remove an entry from the map and both indexes; returns it."""
        entry = self.entries.pop(key)
        for index, item in ((self.asc, (entry.us, key)),
                            (self.desc, (-entry.us, key))):
            pos = bisect.bisect_left(index, item)
            if pos < len(index) and index[pos][1] == key:
                del index[pos]
        return entry

    def lookup(self, number_id):
        """Find an entry by API id (exact, then lowercase)."""
        entry = self.entries.get(number_id)
        if entry is None:
            entry = self.entries.get(number_id.lower())
        return entry

    def used_numbers(self):
        """Set of every `number` currently stored."""
        return {e.obj.get("number") for e in self.entries.values()
                if type(e.obj) is dict}

    def next_id(self):
        """Next deterministic id for a created number."""
        self.create_counter += 1
        return derived_uuid(self.seed, "create", self.create_counter)

    def assign_number(self, area):
        """A deterministic unused '+1' + area + 7 digits number."""
        used = self.used_numbers()
        digest = hashlib.sha256(("vapi-mock:%s:number:%d" % (
            self.seed, self.create_counter)).encode()).digest()
        n = int.from_bytes(digest[:8], "big") % 10 ** 7
        while True:
            text = "+1%s%07d" % (area, n)
            if text not in used:
                return text
            n = (n + 1) % 10 ** 7

    # -- behaviour switches ------------------------------------------------

    def set_behaviour(self, changes):
        """Merge validated switch changes (None: off) into the current set
        and reshape the stored entries where a switch needs it."""
        new = dict(self.behaviour)
        for name, value in changes.items():
            if value is None:
                new.pop(name, None)
            else:
                new[name] = value
        if changes.get("retention_days") is not None:
            new.pop("retention_since", None)
        if changes.get("retention_since") is not None:
            new.pop("retention_days", None)
        old, self.behaviour = self.behaviour, new
        micro = bool(new.get("microseconds"))
        if micro != bool(old.get("microseconds")):
            for entry in self.entries.values():
                entry.set_extra(micro_extra(entry.key) if micro else 0)
            self.reindex()
        legacy = bool(new.get("legacy_secrets"))
        if legacy != bool(old.get("legacy_secrets")):
            for entry in self.entries.values():
                entry.legacy = (legacy_fields(entry.key, entry.obj) if legacy
                                else None)
                entry.refresh()
        if "retention_days" in changes or "retention_since" in changes:
            self.retention_ms = None
            if "retention_since" in new:
                self.retention_ms = parse_iso(new["retention_since"])
            elif "retention_days" in new and self.desc:
                self.retention_ms = max(MIN_MS, self.desc[0][2].ms - int(
                    round(new["retention_days"] * 86400000)))
        self.touch()

    # -- listing -----------------------------------------------------------

    def retention_floor(self):
        """First stored microsecond inside the retention window, or None."""
        if self.retention_ms is None:
            return None
        return self.retention_ms * 1000

    def select(self, lo, hi, params, desc, offset, limit):
        """Select (total, [entries]) within inclusive createdAt bounds in
        microseconds (None: open), with the request's updatedAt and search
        filters.

        The createdAt range is found by bisection on the sorted index; the
        updatedAt and search filters scan only that range."""
        index = self.desc if desc else self.asc
        if desc:
            start = bisect.bisect_left(index, (-hi,)) if hi is not None else 0
            end = (bisect.bisect_left(index, (-lo + 1,)) if lo is not None
                   else len(index))
        else:
            start = bisect.bisect_left(index, (lo,)) if lo is not None else 0
            end = (bisect.bisect_left(index, (hi + 1,)) if hi is not None
                   else len(index))
        end = max(start, end)
        ulo, uhi = _bounds(params, "updatedAt")
        search = params.get("search")
        search = search.lower() if search else None
        if ulo is None and uhi is None and search is None:
            first = min(start + offset, end)
            return end - start, [t[2] for t in
                                 index[first:min(first + limit, end)]]
        if ulo is None and uhi is None:
            rows = [t[2] for t in index[start:end]]
        else:
            ulo = -(1 << 62) if ulo is None else ulo
            uhi = (1 << 62) if uhi is None else uhi
            rows = [t[2] for t in index[start:end]
                    if ulo <= t[2].upd_us <= uhi]
        if search is not None:
            rows = [e for e in rows if search in e.text
                    and any(search in f for f in e.search)]
        return len(rows), rows[offset:offset + limit]

    def list_entries(self, params, desc, offset, limit):
        """Select (total, [entries]) for a listing: the request's filters,
        inside the retention window if there is one."""
        lo, hi = _bounds(params, "createdAt")
        floor = self.retention_floor()
        if floor is not None and (lo is None or lo < floor):
            lo = floor
        return self.select(lo, hi, params, desc, offset, limit)

    @staticmethod
    def join(entries):
        """JSON array bytes built from the entries' cached bytes."""
        return b"[" + b",".join([e.raw for e in entries]) + b"]"

    def page_size(self, limit):
        """The number of rows a list page really holds (cap_limit)."""
        cap = self.behaviour.get("cap_limit")
        return limit if cap is None else min(limit, cap)

    def list_v1(self, params):
        """Body of GET /phone-number."""
        desc = self.behaviour.get("v1_order") != "ASC"
        _, rows = self.list_entries(params, desc, 0,
                                    self.page_size(params["limit"]))
        return self.join(rows)

    def list_v2(self, params):
        """Body of GET /v2/phone-number."""
        switches = self.behaviour
        limit = params["limit"]
        page = params["page"]
        order = params["sortOrder"]
        size = self.page_size(limit)
        desc = order == "DESC" or bool(switches.get("ignore_sort_order"))
        total, rows = self.list_entries(params, desc, (page - 1) * size, size)
        meta = {"itemsPerPage": limit, "totalItems": total,
                "currentPage": page}
        minimal = bool(switches.get("minimal_metadata"))
        if not minimal and not switches.get("no_has_next_page"):
            meta["totalPages"] = math.ceil(total / size) if size else 0
            meta["hasNextPage"] = bool(size) and page * size < total
            meta["sortOrder"] = order
        floor = self.retention_floor()
        if floor is not None and not minimal:
            lo, hi = _bounds(params, "createdAt")
            if lo is None or lo < floor:
                top = floor - 1 if hi is None else min(hi, floor - 1)
                beyond, _ = self.select(lo, top, params, desc, 0, 0)
                if beyond:
                    meta["itemsBeyondRetention"] = True
                meta["createdAtGe"] = fmt_ts(self.retention_ms)
        return (b'{"results":' + self.join(rows) + b',"metadata":'
                + dumps(meta) + b"}")

    # -- mutations ---------------------------------------------------------

    def fire_mutations(self):
        """Count one served list request; apply rules that are now due."""
        for rule in self.mutation_rules:
            if rule["fired"]:
                continue
            rule["seen"] += 1
            if rule["seen"] >= rule["before_list_request"]:
                rule["fired"] = True
                self.apply_mutation(rule)

    def apply_mutation(self, rule):
        """Delete k numbers at a position and create k new ones there."""
        at = rule["at"]
        n_create, n_delete = rule["create"], rule["delete"]
        order = self.desc
        size = len(order)
        if at == "newest":
            victims = order[:n_delete]
            base = order[0][2].ms if size else BASE_MS
            stamps = [base + 1000 * (j + 1) for j in range(n_create)]
        elif at == "oldest":
            victims = order[size - n_delete:] if n_delete else []
            base = order[-1][2].ms if size else BASE_MS
            stamps = [base - 1000 * (j + 1) for j in range(n_create)]
        else:
            mid = size // 2
            first = max(0, mid - n_delete // 2)
            victims = order[first:first + n_delete]
            if size >= 2:
                newer, older = order[mid - 1][2].ms, order[mid][2].ms
            else:
                newer = older = order[0][2].ms if size else BASE_MS
            gap = newer - older
            if gap > n_create:
                stamps = [older + gap * (j + 1) // (n_create + 1)
                          for j in range(n_create)]
            else:
                stamps = [older] * n_create
        for _, key, _ in list(victims):
            self.remove(key)
            self.mut_deleted.append(key)
        used = self.used_numbers()
        for ms in stamps:
            number_id = self.next_id()
            counter = self.create_counter
            rng = random.Random("vapi-mock:%s:mutation:%d" % (self.seed, counter))
            obj = build_number(rng, self.count + counter,
                               PROVIDERS[(counter - 1) % len(PROVIDERS)],
                               self.org_id, number_id, ms, ms, False, used)
            self.insert(Entry(number_id, obj, ms, ms))
            self.mut_created.append(number_id)
        self.touch()

    # -- faults ------------------------------------------------------------

    def pick_fault(self, method, path):
        """Count this request against every matching rule; return the first
        rule that hits it (a copy), or None.  Call with the lock held.

        A rule hits the requests at positions every, 2*every, ... after its
        first `skip` matching requests, up to `times` hits (0: no limit);
        with every = 1 that is the skip/times window itself."""
        chosen = None
        for rule in self.faults:
            match = rule.get("match") or "*"
            if match != "*":
                if " " in match:
                    want_method, prefix = match.split(" ", 1)
                    if want_method not in ("*", method):
                        continue
                else:
                    prefix = match
                if not path.startswith(prefix):
                    continue
            rule["seen"] += 1
            pos = rule["seen"] - rule["skip"]
            every, times = rule.get("every", 1), rule["times"]
            if chosen is None and pos > 0 and pos % every == 0 and \
                    (times == 0 or pos // every <= times):
                chosen = dict(rule)
        return chosen


# --------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------

class Response:
    """An answer to send: status, body bytes, content type, extra headers."""
    __slots__ = ("status", "body", "ctype", "headers", "cache", "compress")

    def __init__(self, status, body, ctype=JSON_CT, headers=(), cache=None,
                 compress=True):
        """Build a response; `cache` is a [body, gzip_body] page-cache slot."""
        self.status = status
        self.body = body
        self.ctype = ctype
        self.headers = list(headers)
        self.cache = cache
        self.compress = compress


def json_response(status, value):
    """A JSON response from a Python value."""
    return Response(status, dumps(value))


def error_response(status, message, error=None):
    """A NestJS-shaped error: {"statusCode","message","error"}."""
    return json_response(status, {"statusCode": status, "message": message,
                                  "error": error or phrase(status)})


def nest_error(status, message):
    """A NestJS-shaped error in NestJS's own key order:
    {"message","error","statusCode"}."""
    return json_response(status, {"message": message, "error": phrase(status),
                                  "statusCode": status})


def check_fault_headers(headers):
    """The error message for a bad "headers" object of a fault, or None."""
    if type(headers) is not dict:
        return HEADERS_MSG
    for name, value in headers.items():
        if type(value) is not str:
            return HEADERS_MSG
        if not name or ":" in name or "\r" in name + value \
                or "\n" in name + value:
            return HEADER_TEXT_MSG
    return None


def fault_headers(headers):
    """(name, value) pairs of a fault's "headers", as UTF-8 wire text."""
    return [(name.encode("utf-8").decode("latin-1"),
             value.encode("utf-8").decode("latin-1"))
            for name, value in (headers or {}).items()]


def corrupt_bytes(data, rng):
    """Damage a body reproducibly: flip bytes, delete a span, insert garbage
    or truncate (one of the four, chosen by rng)."""
    data = bytearray(data)
    if not data:
        return b"\x00"
    how = rng.randrange(4)
    if how == 0:
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            data[pos] ^= rng.randint(1, 255)
    elif how == 1:
        start = rng.randrange(len(data))
        del data[start:start + rng.randint(1, 64)]
    elif how == 2:
        pos = rng.randrange(len(data) + 1)
        data[pos:pos] = bytes(rng.randrange(256)
                              for _ in range(rng.randint(1, 16)))
    else:
        data = data[:rng.randrange(len(data))]
    return bytes(data)


class MockServer(ThreadingHTTPServer):
    """Threading HTTP server that numbers its connections in accept order."""
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, store):
        """Bind the server to `address` and attach the common store."""
        self.store = store
        self.stopping = threading.Event()
        self.serials = {}
        self.blackhole_port = None
        super().__init__(address, MockHandler)

    def process_request(self, request, client_address):
        """Give the accepted connection its serial number, then serve it."""
        with self.store.lock:
            self.store.conn_counter += 1
            self.serials[request] = self.store.conn_counter
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        """Stay quiet about connections the client broke; report real bugs."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def take_serial(self, request):
        """Serial number of a connection (called once by its handler)."""
        with self.store.lock:
            return self.serials.pop(request, 0)


class MockHandler(BaseHTTPRequestHandler):
    """Handles the Vapi API routes and the /__mock control routes."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "vapi-mock"

    def setup(self):
        """Per-connection setup: remember the connection serial."""
        super().setup()
        self.conn_serial = self.server.take_serial(self.request)

    def log_message(self, format, *args):
        """Silence the default stderr request logging."""

    # Every method goes through the same dispatcher.
    def do_GET(self):
        """Dispatch a GET request."""
        self.dispatch()

    def do_POST(self):
        """Dispatch a POST request."""
        self.dispatch()

    def do_PATCH(self):
        """Dispatch a PATCH request."""
        self.dispatch()

    def do_DELETE(self):
        """Dispatch a DELETE request."""
        self.dispatch()

    def do_PUT(self):
        """Dispatch a PUT request (no such route: 404)."""
        self.dispatch()

    def do_OPTIONS(self):
        """Dispatch an OPTIONS request (no such route: 404)."""
        self.dispatch()

    def do_HEAD(self):
        """Dispatch a HEAD request (like GET, without the body)."""
        self.dispatch()

    # -- plumbing ----------------------------------------------------------

    def read_body(self, limit):
        """Read the request body; returns (bytes, too_large, ok).

        Bodies over `limit` are read and dropped (up to a cap) so that the
        connection stays usable; ok is False if the connection is unusable."""
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                parts, total = [], 0
                while True:
                    line = self.rfile.readline(1024)
                    if not line:
                        return b"", False, False
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    total += size
                    if total > DISCARD_CAP:
                        return b"", True, False
                    chunk = self.rfile.read(size)
                    self.rfile.readline(1024)
                    if total <= limit:
                        parts.append(chunk)
                return b"".join(parts), total > limit, True
            length = self.headers.get("Content-Length")
            if not length:
                return b"", False, True
            length = int(length)
            if length < 0:
                return b"", False, False
            if length > limit:
                if length > DISCARD_CAP:
                    self.close_connection = True
                    return b"", True, True
                left = length
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 16))
                    if not chunk:
                        return b"", True, False
                    left -= len(chunk)
                return b"", True, True
            data = self.rfile.read(length)
            if len(data) < length:
                return b"", False, False
            return data, False, True
        except (ValueError, OSError):
            return b"", False, False

    def wants_gzip(self):
        """True if the client accepts gzip."""
        return "gzip" in (self.headers.get("Accept-Encoding") or "").lower()

    def send_raw(self, data):
        """Write bytes to the socket; on failure mark the connection closed."""
        try:
            self.wfile.write(data)
            return True
        except OSError:
            self.close_connection = True
            return False

    def head_bytes(self, status, ctype, length, headers):
        """Status line and header block."""
        lines = ["HTTP/1.1 %d %s" % (status, phrase(status))]
        if ctype is not None:
            lines.append("Content-Type: " + ctype)
        lines.append("Content-Length: %d" % length)
        for name, value in headers:
            lines.append("%s: %s" % (name, value))
        lines.append("Connection: " + ("close" if self.close_connection
                                       else "keep-alive"))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def emit(self, resp, log_entry=None, fault=None):
        """Send a response, applying gzip and any post-processing fault."""
        kind = fault["kind"] if fault else None
        body = resp.body
        ctype = resp.ctype
        headers = list(resp.headers)
        cache = resp.cache
        if kind == "content_type":
            ctype = fault.get("value")
        elif kind == "corrupt":
            seed = fault.get("seed", 0)
            seq = log_entry["seq"] if log_entry else 0
            body = corrupt_bytes(body, random.Random(int(seed) + seq))
            cache = None
        wire = body
        if resp.compress and len(body) > GZIP_MIN and self.wants_gzip():
            gz = cache[1] if cache is not None else None
            if gz is None:
                gz = gzip.compress(body, 1, mtime=0)
                if cache is not None:
                    cache[1] = gz
            wire = gz
            headers.append(("Content-Encoding", "gzip"))
            headers.append(("Vary", "Accept-Encoding"))
        if kind in ("truncate", "stall"):
            self.close_connection = True
        if log_entry is not None:
            with self.server.store.lock:
                log_entry["status"] = resp.status
        head = self.head_bytes(resp.status, ctype, len(wire), headers)
        if self.command == "HEAD":
            self.send_raw(head)
        elif kind == "truncate":
            self.send_raw(head + wire[:len(wire) // 2])
        elif kind == "stall":
            if self.send_raw(head + wire[:10]):
                self.server.stopping.wait(float(fault.get("ms", 60000)) / 1000)
        else:
            self.send_raw(head + wire)

    # -- dispatch ----------------------------------------------------------

    def dispatch(self):
        """Read the request and route it to the control or the API side."""
        target = self.path
        path, _, query = target.partition("?")
        control = path == "/__mock" or path.startswith("/__mock/")
        body, too_large, ok = self.read_body(MAX_CONTROL_BODY if control
                                             else MAX_API_BODY)
        if not ok:
            self.close_connection = True
            return
        if control:
            try:
                resp = self.control(self.command, path, query, body, too_large)
            except Exception as exc:   # keep the server alive on bugs
                resp = error_response(500, "mock error: %r" % (exc,))
            self.emit(resp)
            return
        self.api(target, path, query, body, too_large)

    def auth_state(self):
        """'ok', 'missing' or 'wrong' for the Authorization header."""
        value = self.headers.get("Authorization")
        if value is None:
            return "missing"
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip() == self.server.store.key:
            return "ok"
        return "wrong"

    def api(self, target, path, query, body, too_large):
        """Log an API request, apply any fault, and answer it."""
        store = self.server.store
        method = self.command
        auth = self.auth_state()
        try:
            parsed = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            parsed = None
        with store.lock:
            store.seq += 1
            entry = {"seq": store.seq, "method": method, "path": target,
                     "conn": self.conn_serial,
                     "user_agent": self.headers.get("User-Agent"),
                     "accept_encoding": self.headers.get("Accept-Encoding"),
                     "content_type": self.headers.get("Content-Type"),
                     "auth": auth, "body": parsed, "status": None,
                     "fault": None}
            store.log.append(entry)
            fault = store.pick_fault(method, path)
            if fault:
                entry["fault"] = fault["kind"]
        kind = fault["kind"] if fault else None
        if kind == "latency":
            self.server.stopping.wait(float(fault.get("ms", 0)) / 1000)
        if kind == "cut":
            self.close_connection = True
            return
        if kind == "status":
            status = int(fault.get("status", 500))
            resp = error_response(status, fault.get("message") or phrase(status))
            if fault.get("retry_after") is not None:
                resp.headers.append(("Retry-After", str(fault["retry_after"])))
        elif kind == "html":
            status = int(fault.get("status", 502))
            resp = Response(status, NGINX_PAGE.format(
                code=status, phrase=phrase(status)).encode("utf-8"),
                "text/html", compress=False)
            if fault.get("retry_after") is not None:
                resp.headers.append(("Retry-After", str(fault["retry_after"])))
        elif kind == "body":
            text = fault.get("text", "")
            data = text.encode("utf-8") if isinstance(text, str) else dumps(text)
            resp = Response(int(fault.get("status", 200)), data,
                            fault.get("content_type", JSON_CT),
                            fault_headers(fault.get("headers")),
                            compress=False)
        elif kind == "malformed":
            resp = Response(200, MALFORMED_BODY, compress=False)
        else:
            try:
                resp = self.serve(method, target, path, query, body, too_large,
                                  auth)
            except Exception as exc:   # keep the server alive on bugs
                resp = error_response(500, "mock error: %r" % (exc,))
        self.emit(resp, entry, fault)

    # -- API routes --------------------------------------------------------

    def serve(self, method, target, path, query, body, too_large, auth):
        """Answer an API request (no fault involved)."""
        if too_large:
            return error_response(413, "request entity too large",
                                  "Payload Too Large")
        if auth != "ok":
            return Response(401, UNAUTHORIZED_BODY)
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        route_method = "GET" if method == "HEAD" else method
        if self.server.store.behaviour.get("no_v2") and \
                (path + "/").startswith("/v2/phone-number/"):
            return nest_error(404, "Cannot %s %s" % (method, target))
        if path == "/phone-number":
            if route_method == "GET":
                return self.list_numbers(query, False)
            if route_method == "POST":
                return self.create(body)
        elif path == "/v2/phone-number":
            if route_method == "GET":
                return self.list_numbers(query, True)
        elif path == "/phone-number/buy" and route_method == "POST":
            return self.buy(body)
        elif path.startswith("/phone-number/") and "/" not in path[14:]:
            number_id = unquote(path[14:])
            if route_method in ("GET", "PATCH", "DELETE"):
                if not UUID_RE.match(number_id):
                    return error_response(400, "Validation failed (uuid is "
                                          "expected)")
                if route_method == "GET":
                    return self.get_one(number_id)
                if route_method == "PATCH":
                    return self.update(number_id, body)
                return self.delete(number_id)
        return error_response(404, "Cannot %s %s" % (method, target))

    def list_numbers(self, query, v2):
        """GET /phone-number (bare array) or GET /v2/phone-number (paged)."""
        store = self.server.store
        rejected = store.behaviour.get("reject_params") or ()
        params, errs = validate_list_query(query, v2, rejected)
        if errs:
            if rejected and any(key in rejected for key, _ in
                                parse_qsl(query, keep_blank_values=True)):
                return nest_error(400, errs)
            return error_response(400, errs)
        with store.lock:
            store.fire_mutations()
            cache_key = (v2, query)
            slot = store.page_cache.get(cache_key)
            if slot is None:
                data = store.list_v2(params) if v2 else store.list_v1(params)
                slot = [data, None]
                if len(store.page_cache) >= PAGE_CACHE_MAX:
                    store.page_cache.clear()
                store.page_cache[cache_key] = slot
        return Response(200, slot[0], cache=slot)

    def get_one(self, number_id):
        """GET /phone-number/{id}."""
        store = self.server.store
        with store.lock:
            entry = store.lookup(number_id)
            if entry is None:
                return error_response(404, "Phone number not found")
            return Response(200, entry.raw)

    def delete(self, number_id):
        """DELETE /phone-number/{id}: answers the deleted object."""
        store = self.server.store
        with store.lock:
            entry = store.lookup(number_id)
            if entry is None:
                return error_response(404, "Phone number not found")
            store.remove(entry.key)
            store.touch()
            return Response(200, entry.raw)

    def parse_json_body(self, body):
        """Parse a JSON request body; returns (value, error response)."""
        if not body.strip():
            return {}, None
        try:
            return json.loads(body.decode("utf-8")), None
        except UnicodeDecodeError as exc:
            return None, error_response(400, "Unexpected token in JSON at "
                                        "position %d" % exc.start)
        except ValueError as exc:
            return None, error_response(400, "Unexpected token in JSON at "
                                        "position %d" % getattr(exc, "pos", 0))

    def create(self, body):
        """POST /phone-number: validate per provider and store."""
        data, err = self.parse_json_body(body)
        if err:
            return err
        if type(data) is not dict or data.get("provider") not in PROVIDERS:
            return error_response(400, [PROVIDER_MSG])
        provider = data["provider"]
        errs = validate_body(data, provider, CREATE_FIELDS[provider],
                             CREATE_REQUIRED[provider])
        if errs:
            return error_response(400, errs)
        store = self.server.store
        with store.lock:
            obj = {"id": store.next_id(), "orgId": store.org_id}
            for key, value in data.items():
                if value is not None:
                    obj[key] = value
            if provider == "vapi":
                area = data.get("numberDesiredAreaCode")
                if area is not None or data.get("sipUri") is None:
                    obj["number"] = store.assign_number(area or "415")
                obj["status"] = "activating"
            else:
                obj["status"] = "active"
            now = now_ms()
            obj["createdAt"] = fmt_ts(now)
            obj["updatedAt"] = fmt_ts(now)
            entry = Entry(obj["id"], obj)
            store.insert(entry, fresh=True)
            store.touch()
            return Response(201, entry.raw)

    def buy(self, body):
        """POST /phone-number/buy (legacy): buy a vapi number by area code."""
        data, err = self.parse_json_body(body)
        if err:
            return err
        if type(data) is not dict:
            return error_response(400, ["areaCode must be a string"])
        errs = validate_body(data, "vapi", BUY_FIELDS, ("areaCode",))
        if errs:
            return error_response(400, errs)
        store = self.server.store
        with store.lock:
            obj = {"id": store.next_id(), "orgId": store.org_id,
                   "provider": "vapi"}
            obj["number"] = store.assign_number(data["areaCode"])
            obj["numberDesiredAreaCode"] = data["areaCode"]
            for key in BUY_FIELDS[1:]:
                if data.get(key) is not None:
                    obj[key] = data[key]
            obj["status"] = "activating"
            now = now_ms()
            obj["createdAt"] = fmt_ts(now)
            obj["updatedAt"] = fmt_ts(now)
            entry = Entry(obj["id"], obj)
            store.insert(entry, fresh=True)
            store.touch()
            return Response(201, entry.raw)

    def update(self, number_id, body):
        """PATCH /phone-number/{id}: partial update; null removes a field."""
        data, err = self.parse_json_body(body)
        if err:
            return err
        store = self.server.store
        with store.lock:
            entry = store.lookup(number_id)
            if entry is None:
                return error_response(404, "Phone number not found")
            stored = entry.obj if type(entry.obj) is dict else {}
            provider = stored.get("provider")
            allowed = UPDATE_FIELDS.get(provider, UPDATE_FIELDS[UNKNOWN_PROVIDER])
            if type(data) is not dict:
                return error_response(400, ["provider must be one of the "
                                            "following values: %s" % provider])
            errs = []
            if data.get("provider") is not None and data["provider"] != provider:
                errs.append("provider must be one of the following values: %s"
                            % provider)
            errs += validate_body(data, provider, allowed, (), stored)
            if errs:
                return error_response(400, errs)
            obj = dict(stored)
            for key, value in data.items():
                if key == "provider":
                    continue
                if value is None:
                    obj.pop(key, None)
                else:
                    obj[key] = value
            created = parse_iso(obj.get("createdAt"))
            obj["updatedAt"] = fmt_ts(max(now_ms(), created or 0))
            entry.obj = obj
            if entry.legacy is not None and "server" in data:
                # The new server object (or none) carries no legacy secret.
                entry.legacy = dict(entry.legacy, secret=None)
            entry.refresh()
            store.touch()
            return Response(200, entry.raw)

    # -- control routes ----------------------------------------------------

    def control(self, method, path, query, body, too_large):
        """Answer a /__mock control request (never logged, no auth)."""
        store = self.server.store
        if too_large:
            return error_response(413, "request entity too large",
                                  "Payload Too Large")
        data = None
        if body.strip():
            try:
                data = json.loads(body.decode("utf-8"))
            except ValueError as exc:
                return error_response(400, "invalid JSON body: %s" % exc)
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        route = (method, path)
        if route == ("POST", "/__mock/reset"):
            data = data if type(data) is dict else {}
            count = data.get("count", store.default_count)
            seed = data.get("seed", store.default_seed)
            max_step = data.get("max_step", store.default_max_step)
            newest = data.get("newest", store.default_newest)
            if type(count) is not int or count < 0 or type(seed) is not int:
                return error_response(400, "count must be an integer >= 0 "
                                      "and seed an integer")
            if type(max_step) is not int or max_step < 1:
                return error_response(400, "max_step must be an integer >= 1")
            if newest is not None and type(newest) is not str:
                return error_response(400, NEWEST_MSG)
            with store.lock:
                try:
                    store.reset(count, seed, max_step, newest)
                except ValueError as exc:
                    return error_response(400, str(exc))
                return json_response(200, {"ok": True,
                                           "numbers": len(store.entries)})
        if route == ("GET", "/__mock/requests"):
            with store.lock:
                return json_response(200, store.log)
        if route == ("DELETE", "/__mock/requests"):
            with store.lock:
                store.log = []
                store.seq = 0
            return json_response(200, {"ok": True})
        if route == ("GET", "/__mock/stats"):
            with store.lock:
                return json_response(200, {
                    "requests": len(store.log),
                    "connections": store.conn_counter,
                    "numbers": len(store.entries),
                    "blackhole_connections": store.blackhole_connections,
                    "blackhole_port": self.server.blackhole_port})
        if route == ("GET", "/__mock/numbers"):
            with store.lock:
                return Response(200, store.join([t[2] for t in store.desc]))
        if route == ("POST", "/__mock/numbers"):
            return self.plant(data)
        if method == "GET" and path.startswith("/__mock/numbers/"):
            key = unquote(path[len("/__mock/numbers/"):])
            with store.lock:
                entry = store.entries.get(key)
                if entry is None:
                    return error_response(404, "Phone number not found")
                return Response(200, entry.raw)
        if route == ("POST", "/__mock/faults"):
            return self.add_faults(data)
        if route == ("GET", "/__mock/faults"):
            with store.lock:
                return json_response(200, store.faults)
        if route == ("DELETE", "/__mock/faults"):
            with store.lock:
                store.faults = []
            return json_response(200, {"ok": True})
        if route == ("POST", "/__mock/behaviour"):
            changes, msg = check_behaviour(data)
            if msg:
                return error_response(400, msg)
            with store.lock:
                store.set_behaviour(changes)
                return json_response(200, store.behaviour)
        if route == ("GET", "/__mock/behaviour"):
            with store.lock:
                return json_response(200, store.behaviour)
        if route == ("DELETE", "/__mock/behaviour"):
            with store.lock:
                store.set_behaviour({name: None for name in store.behaviour})
                return json_response(200, store.behaviour)
        if route == ("POST", "/__mock/mutations"):
            return self.add_mutations(data)
        if route == ("GET", "/__mock/mutations"):
            with store.lock:
                return json_response(200, {"created": store.mut_created,
                                           "deleted": store.mut_deleted})
        if route == ("DELETE", "/__mock/mutations"):
            with store.lock:
                store.mutation_rules = []
            return json_response(200, {"ok": True})
        return error_response(404, "Cannot %s %s" % (method, path))

    def plant(self, data):
        """POST /__mock/numbers: insert raw values verbatim (replace by id)."""
        if type(data) is dict:
            data = [data]
        if type(data) is not list:
            return error_response(400, "expected a JSON array of objects")
        store = self.server.store
        with store.lock:
            for obj in data:
                if type(obj) is dict and type(obj.get("id")) is str:
                    key = obj["id"]
                else:
                    store.planted_counter += 1
                    key = "~planted-%06d" % store.planted_counter
                if key in store.entries:
                    store.remove(key)
                store.insert(Entry(key, obj))
            store.touch()
            return json_response(200, {"ok": True,
                                       "numbers": len(store.entries)})

    def add_faults(self, data):
        """POST /__mock/faults: append fault rules."""
        if type(data) is dict:
            data = [data]
        if type(data) is not list:
            return error_response(400, "expected a JSON array of fault rules")
        rules = []
        for item in data:
            if type(item) is not dict or item.get("kind") not in FAULT_KINDS:
                return error_response(400, "fault kind must be one of: "
                                      + ", ".join(FAULT_KINDS))
            rule = dict(item)
            try:
                rule["skip"] = int(item.get("skip", 0))
                rule["times"] = int(item.get("times", 1))
            except (TypeError, ValueError):
                return error_response(400, "skip and times must be integers")
            for key in ("status", "ms", "seed"):
                if key in item and not is_num(item[key]):
                    return error_response(400, "%s must be a number" % key)
            if "status" in item and not 100 <= item["status"] <= 999:
                return error_response(400, "status must be in 100..999")
            for key in ("match", "value", "content_type"):
                if item.get(key) is not None and type(item[key]) is not str:
                    return error_response(400, "%s must be a string" % key)
            if item.get("retry_after") is not None and \
                    type(item["retry_after"]) is not str and \
                    not is_num(item["retry_after"]):
                return error_response(400, "retry_after must be a string")
            if rule["skip"] < 0 or rule["times"] < 0:
                return error_response(400, "skip and times must be >= 0")
            if "every" in item and (type(item["every"]) is not int
                                    or item["every"] < 1):
                return error_response(400, EVERY_MSG)
            if item["kind"] == "body" and item.get("headers") is not None:
                msg = check_fault_headers(item["headers"])
                if msg:
                    return error_response(400, msg)
            rule["seen"] = 0
            rules.append(rule)
        store = self.server.store
        with store.lock:
            store.faults.extend(rules)
            return json_response(200, {"ok": True, "faults": len(store.faults)})

    def add_mutations(self, data):
        """POST /__mock/mutations: append mutation rules."""
        if type(data) is dict:
            data = [data]
        if type(data) is not list:
            return error_response(400, "expected a JSON array of mutation rules")
        rules = []
        for item in data:
            if type(item) is not dict:
                return error_response(400, "a mutation rule must be an object")
            at = item.get("at", "newest")
            if at not in ("newest", "oldest", "middle"):
                return error_response(400, "at must be newest, oldest or middle")
            try:
                rule = {"before_list_request":
                        max(1, int(item.get("before_list_request", 1))),
                        "create": max(0, int(item.get("create", 0))),
                        "delete": max(0, int(item.get("delete", 0))),
                        "at": at, "seen": 0, "fired": False}
            except (TypeError, ValueError):
                return error_response(400, "before_list_request, create and "
                                      "delete must be integers")
            rules.append(rule)
        store = self.server.store
        with store.lock:
            store.mutation_rules.extend(rules)
            return json_response(200, {"ok": True,
                                       "rules": len(store.mutation_rules)})


# --------------------------------------------------------------------------
# Black hole listener
# --------------------------------------------------------------------------

class BlackHole:
    """A listener whose connections are accepted and then left hanging.

    One thread accepts and watches every connection with poll(); nothing is
    ever read or written.  A connection is closed when its peer closes it
    (seen through POLLRDHUP where the system has it; elsewhere pending data
    is read and dropped so that the end of the stream shows) or when the
    mock stops."""

    def __init__(self, host, store, stopping):
        """Bind a listening socket on `host` with a port the system picks."""
        self.store = store
        self.stopping = stopping
        self.sock = socket.create_server((host, 0), backlog=128)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True,
                                       name="blackhole")

    def start(self):
        """Start the accepting thread."""
        self.thread.start()

    def run(self):
        """Accept and hold connections until the stop event is set."""
        rdhup = getattr(select, "POLLRDHUP", 0)
        gone = select.POLLHUP | select.POLLERR | select.POLLNVAL | rdhup
        watch = rdhup if rdhup else select.POLLIN
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        conns = {}
        try:
            while not self.stopping.is_set():
                for fd, events in poller.poll(100):
                    if fd == self.sock.fileno():
                        self.accept(poller, conns, watch)
                        continue
                    conn = conns.get(fd)
                    if conn is None:
                        continue
                    if not events & gone and self.drain(conn):
                        continue
                    poller.unregister(fd)
                    del conns[fd]
                    conn.close()
        finally:
            for conn in conns.values():
                conn.close()
            self.sock.close()

    def accept(self, poller, conns, watch):
        """Accept every pending connection and start watching it."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setblocking(False)
            conns[conn.fileno()] = conn
            poller.register(conn, watch)
            with self.store.lock:
                self.store.blackhole_connections += 1

    @staticmethod
    def drain(conn):
        """Drop pending input (systems without POLLRDHUP); False at EOF."""
        try:
            return bool(conn.recv(65536))
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def close(self, timeout=2):
        """Stop the thread (the stop event must be set) and wait for it."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

def write_port_file(path, port):
    """Write the port atomically (temp file + rename)."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def main(argv=None):
    """Parse the command line, start the server and serve until a signal."""
    ap = argparse.ArgumentParser(description="Local mock of the Vapi "
                                 "phone-number REST API.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--key", default=DEFAULT_KEY)
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--max-step", type=int, default=DEFAULT_MAX_STEP,
                    help="largest gap between two consecutive createdAt "
                    "values, in seconds (default %(default)s)")
    ap.add_argument("--newest", metavar="now|ISO",
                    help="shift the data set by whole seconds so that the "
                    "newest createdAt falls in the current second (now) or "
                    "in the second of the given date-time")
    ap.add_argument("--blackhole-port-file", metavar="FILE",
                    help="also listen on a port that accepts connections "
                    "and never answers; write that port to FILE")
    args = ap.parse_args(argv)
    if args.max_step < 1:
        ap.error("--max-step must be >= 1")

    try:
        store = Store(args.key, args.count, args.seed, args.max_step,
                      args.newest)
    except ValueError as exc:
        ap.error(str(exc))
    server = MockServer((args.host, args.port), store)
    port = server.server_address[1]
    blackhole = None
    if args.blackhole_port_file:
        blackhole = BlackHole(args.host, store, server.stopping)
        server.blackhole_port = blackhole.port
        blackhole.start()

    def stop(signum, frame):
        """Signal handler: stop serving (from a helper thread)."""
        server.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if blackhole is not None:
        # Written first: whoever waits for --port-file finds both.
        write_port_file(args.blackhole_port_file, blackhole.port)
    if args.port_file:
        write_port_file(args.port_file, port)
    print("vapi mock listening on http://%s:%d" % (args.host, port), flush=True)
    if blackhole is not None:
        print("black hole listening on %s:%d" % (args.host, blackhole.port),
              flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.stopping.set()
        if blackhole is not None:
            blackhole.close()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# test_mock.py - unit test of vapi_mock.py and mockctl.py.
#
# Starts the mock as a subprocess on 127.0.0.1 with an ephemeral port (read
# back from --port-file) and checks, with exact values and messages: the 401
# answer, the v1 and v2 listings (order, limits, paging, the eight time
# filters, search, query validation), get/patch/delete by id, creation per
# provider, the legacy buy route, every fault kind (with "every", "contains"
# and extra headers), list-time mutations, the request log and its timing
# (start_ms, end_ms, inflight, max_inflight: real overlap under a latency
# fault, no false overlap for a client that waits for each answer, every
# way a request ends), gzip, the data-set knobs (--max-step, --newest)
# through the command line, the control API and mockctl.py (overlap,
# held-after, timeline, requests --sorted included), the behaviour
# switches of /__mock/behaviour (each one, its exact answers, and that
# switching them off restores every answer), the black hole listener
# (--blackhole-port-file), and many concurrent keep-alive clients.
#
# Usage (from the top of the source tree):
#   python3 test/test_mock.py [-v]
#   python3 -m unittest discover -s test -p test_mock.py -v
#
# Only the Python 3 standard library is used.

import datetime
import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.path.join(HERE, "vapi_mock.py")
MOCKCTL = os.path.join(HERE, "mockctl.py")
sys.path.insert(0, HERE)
import mockctl  # noqa: E402  (max_in_window, tested on its own)

KEY = "unit-test-key-4f1c2a9e7b3d5c8a"
COUNT = 300
SEED = 1
# sha256 of GET /__mock/numbers for count 300, seed 1 and the default knobs,
# recorded before --max-step and --newest existed.
BASELINE_DUMP_SHA256 = \
    "68dc95b3069918aaa68a049ad1b1f6c7ab4c299e1d240fc1f4e7f1944b4b5e99"

JSON_CT = "application/json; charset=utf-8"
UNAUTHORIZED = (
    b'{"statusCode":401,"error":"Unauthorized","message":"Invalid Key. Hot '
    b'tip, you may be using the private key instead of the public key, or '
    b'vice versa."}')
E164_MSG = ("number must be a valid phone number in the E.164 format. "
            "Hot tip, you may be missing the country code (Eg. US: +1).")
PROVIDER_MSG = ("provider must be one of the following values: "
                "byo-phone-number, twilio, vonage, vapi, telnyx")
NEWEST_MSG = 'newest must be "now" or an ISO 8601 date-time'
RANGE_MSG = ("the data set does not fit in the years 1970..9999: lower count "
             "or max_step, or move newest")
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
TIE_INSTANT = "2024-01-06T15:00:33Z"     # five numbers share this createdAt
DATE_FILTERS = ("createdAtGt", "createdAtLt", "createdAtGe", "createdAtLe",
                "updatedAtGt", "updatedAtLt", "updatedAtGe", "updatedAtLe")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}"
                      r"-[0-9a-f]{12}$")
MS_RE = re.compile(r"\.\d{3}Z$")

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
ONE_MS = datetime.timedelta(milliseconds=1)
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ms_of(text):
    """Epoch milliseconds of an ISO 8601 date-time string."""
    return (datetime.datetime.fromisoformat(text) - EPOCH) // ONE_MS


def iso(ms, with_ms=True):
    """ISO 8601 UTC text of epoch milliseconds, with or without '.mmm'."""
    text = (EPOCH + ms * ONE_MS).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (text[:-3] if with_ms else text[:-7]) + "Z"


def wall_ms():
    """Wall-clock time in epoch milliseconds."""
    return int(time.time() * 1000)


def sha256(data):
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def error_body(status, message, error):
    """The NestJS-style error object the mock answers with."""
    return {"statusCode": status, "message": message, "error": error}


class MockProcess:
    """A vapi_mock.py subprocess on 127.0.0.1 with an ephemeral port."""

    def __init__(self, *args, blackhole=False):
        """Start the mock with extra command-line args and wait until ready.

        With blackhole, the black hole listener is on too (its port in
        self.blackhole_port, else None)."""
        self.tmp = tempfile.mkdtemp(prefix="vapi-mock-test-")
        port_file = os.path.join(self.tmp, "port")
        extra = list(args)
        if blackhole:
            extra += ["--blackhole-port-file",
                      os.path.join(self.tmp, "blackhole.port")]
        self.stderr = open(os.path.join(self.tmp, "stderr"), "w+b")
        self.proc = subprocess.Popen(
            [sys.executable, MOCK, "--host", "127.0.0.1", "--port", "0",
             "--port-file", port_file, "--key", KEY] + extra,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.stderr)
        deadline = time.monotonic() + 15
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the mock did not start: %s"
                                   % self.error_text())
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read())
        self.url = "http://127.0.0.1:%d" % self.port
        self.blackhole_port = None
        if blackhole:
            with open(os.path.join(self.tmp, "blackhole.port")) as f:
                self.blackhole_port = int(f.read())

    def error_text(self):
        """What the mock wrote on stderr so far."""
        try:
            with open(os.path.join(self.tmp, "stderr"), "rb") as f:
                return f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def stop(self):
        """Stop the process (TERM, then KILL) and remove its files."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def request(base, method, path, body=None, headers=None, key=KEY):
    """One request with urllib; returns (status, headers, body bytes).

    `body` may be bytes or a JSON value; key=None sends no Authorization."""
    hdrs = {} if headers is None else dict(headers)
    if key is not None:
        hdrs.setdefault("Authorization", "Bearer " + key)
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(base + path, data=data, headers=hdrs,
                                 method=method)
    try:
        with OPENER.open(req, timeout=20) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def micro_extra(number_id):
    """The extra microseconds the mock gives a number under "microseconds"."""
    digest = hashlib.sha256(("vapi-mock:us:" + number_id).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1000


def us_of(obj, field):
    """A number's stored createdAt/updatedAt in microseconds (switch on)."""
    return ms_of(obj[field]) * 1000 + micro_extra(obj["id"])


def legacy_secret(number_id):
    """The fake legacy secret the mock gives a number."""
    return hashlib.sha256(("vapi-mock:legacy-secret:" + number_id)
                          .encode()).hexdigest()[:32]


def nest_body(status, message, error):
    """A NestJS error answer in NestJS's key order, as the exact bytes."""
    return json.dumps({"message": message, "error": error,
                       "statusCode": status},
                      separators=(",", ":")).encode()


class MockTestCase(unittest.TestCase):
    """Shares one mock process; every test starts from a fresh reset."""

    @classmethod
    def setUpClass(cls):
        """Start the mock (stopped by a class cleanup, even on failure)."""
        cls.mock = MockProcess("--count", str(COUNT), "--seed", str(SEED))
        cls.addClassCleanup(cls.mock.stop)
        cls.base = cls.mock.url

    def setUp(self):
        """Reset the data set, the log, the faults and the mutations."""
        self.reset()

    # -- helpers -----------------------------------------------------------

    def call(self, method, path, body=None, headers=None, key=KEY):
        """API or control request; returns (status, headers, body bytes)."""
        return request(self.base, method, path, body, headers, key)

    def json_call(self, method, path, body=None, status=200, key=KEY):
        """Request, assert the status and JSON content type, decode JSON."""
        code, headers, data = self.call(method, path, body, key=key)
        self.assertEqual(code, status, data[:300])
        self.assertEqual(headers["Content-Type"], JSON_CT)
        return json.loads(data)

    def assert_error(self, method, path, status, message, body=None,
                     error=None):
        """Assert an exact NestJS-style error answer."""
        errors = {400: "Bad Request", 404: "Not Found"}
        got = self.json_call(method, path, body, status)
        self.assertEqual(got, error_body(status, message,
                                         error or errors[status]))

    def reset(self, **fields):
        """POST /__mock/reset with the given fields (count/seed default)."""
        fields.setdefault("count", COUNT)
        fields.setdefault("seed", SEED)
        return self.json_call("POST", "/__mock/reset", fields)

    def dump(self):
        """Every stored number, newest first (GET /__mock/numbers)."""
        return self.json_call("GET", "/__mock/numbers")

    def dump_raw(self):
        """The raw bytes of GET /__mock/numbers."""
        code, _, data = self.call("GET", "/__mock/numbers")
        self.assertEqual(code, 200)
        return data

    def stats(self):
        """GET /__mock/stats."""
        return self.json_call("GET", "/__mock/stats")

    def log(self):
        """The request log."""
        return self.json_call("GET", "/__mock/requests")

    def fault(self, *rules):
        """Install fault rules."""
        self.json_call("POST", "/__mock/faults", list(rules))

    def connect(self):
        """A keep-alive http.client connection to the mock (auto-closed)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.mock.port,
                                          timeout=20)
        self.addCleanup(conn.close)
        return conn

    def mockctl(self, *args, base=None):
        """Run mockctl.py against the mock (or the one at `base`); returns
        (rc, stdout, stderr)."""
        run = subprocess.run([sys.executable, MOCKCTL, "--url",
                              base or self.base]
                             + list(args), stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=20)
        return run.returncode, run.stdout.decode(), run.stderr.decode()

    def raw(self, conn, method, path, body=None, headers=None):
        """One request on a connection; returns (response, body bytes)."""
        hdrs = {"Authorization": "Bearer " + KEY}
        hdrs.update(headers or {})
        if body is not None:
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp, resp.read()


class AuthTest(MockTestCase):
    """Authorization header handling."""

    def test_missing_and_wrong_key(self):
        """No key, a wrong key or a non-Bearer scheme: Vapi's exact 401."""
        cases = ((None, {}), (None, {"Authorization": "Bearer nope"}),
                 (None, {"Authorization": "Basic " + KEY}),
                 ("x" + KEY, {}))
        for key, headers in cases:
            code, hdrs, data = self.call("GET", "/phone-number", key=key,
                                         headers=headers)
            self.assertEqual(code, 401)
            self.assertEqual(data, UNAUTHORIZED)
            self.assertEqual(hdrs["Content-Type"], JSON_CT)
        self.assertEqual([e["auth"] for e in self.log()],
                         ["missing", "wrong", "wrong", "wrong"])
        self.assertEqual([e["status"] for e in self.log()], [401] * 4)

    def test_right_key_and_control_api(self):
        """The right key works; the control API needs none and is not logged."""
        code, _, _ = self.call("GET", "/phone-number?limit=1")
        self.assertEqual(code, 200)
        code, _, _ = self.call("GET", "/__mock/stats", key=None)
        self.assertEqual(code, 200)
        self.assertEqual([(e["method"], e["path"], e["auth"])
                          for e in self.log()],
                         [("GET", "/phone-number?limit=1", "ok")])


class ListV1Test(MockTestCase):
    """GET /phone-number: bare array, newest first."""

    def test_default_listing(self):
        """A bare array of the 100 newest, DESC, ties by id."""
        everything = self.dump()
        self.assertEqual(len(everything), COUNT)
        got = self.json_call("GET", "/phone-number")
        self.assertIsInstance(got, list)
        self.assertEqual(got, everything[:100])
        keys = [(-ms_of(o["createdAt"]), o["id"]) for o in everything]
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(self.json_call("GET", "/phone-number?limit=1000"),
                         everything)

    def test_limit_bounds(self):
        """limit 0..1000 works, anything else is rejected with the message."""
        everything = self.dump()
        self.assertEqual(self.json_call("GET", "/phone-number?limit=0"), [])
        self.assertEqual(self.json_call("GET", "/phone-number?limit=7"),
                         everything[:7])
        self.assertEqual(self.json_call("GET", "/phone-number?limit=7.0"),
                         everything[:7])
        cases = {
            "1001": "limit must not be greater than 1000",
            "-1": "limit must not be less than 0",
            "1.5": "limit must be an integer number",
            "abc": "limit must be a number conforming to the specified "
                   "constraints",
            "": "limit must be a number conforming to the specified "
                "constraints",
        }
        for value, message in cases.items():
            self.assert_error("GET", "/phone-number?limit=" + value, 400,
                              [message])
        self.assert_error("GET", "/phone-number?limit=1&limit=2", 400,
                          ["limit must be a number conforming to the "
                           "specified constraints"])

    def test_v2_parameters_rejected(self):
        """v1 knows no page, sortOrder or search."""
        self.assert_error("GET", "/phone-number?page=1&limit=5&search=x", 400,
                          ["property page should not exist",
                           "property search should not exist"])

    def expected(self, everything, name, pivot_ms):
        """What one time filter should select (DESC order kept)."""
        field = "createdAt" if name.startswith("created") else "updatedAt"
        op = name[-2:]
        tests = {"Gt": lambda v: v > pivot_ms, "Ge": lambda v: v >= pivot_ms,
                 "Lt": lambda v: v < pivot_ms, "Le": lambda v: v <= pivot_ms}
        return [o for o in everything if tests[op](ms_of(o[field]))]

    def test_time_filters(self):
        """Each of the 8 filters, pivots with and without ms, as instants."""
        everything = self.dump()
        pivots = []
        for field in ("createdAt", "updatedAt"):
            with_ms = next(o[field] for o in everything[40:]
                           if MS_RE.search(o[field])
                           and not o[field].endswith(".000Z"))
            without_ms = next(o[field] for o in everything[60:]
                              if not MS_RE.search(o[field]))
            pivots += [with_ms, without_ms]
        pivots.append(TIE_INSTANT)
        for text in pivots:
            ms = ms_of(text)
            # The same instant written four ways, and the whole second
            # below it (a different instant unless ms is whole).
            forms = {iso(ms): ms, iso(ms).replace("Z", "+00:00"): ms,
                     iso(ms + 7200000)[:-1] + "+02:00": ms,
                     iso(ms, False): ms // 1000 * 1000}
            if ms % 1000 == 0:
                forms[iso(ms, False)[:-1]] = ms      # no zone means UTC
            for name in DATE_FILTERS:
                for form, pivot_ms in forms.items():
                    query = urllib.parse.urlencode({name: form,
                                                    "limit": 1000})
                    got = self.json_call("GET", "/phone-number?" + query)
                    self.assertEqual(got, self.expected(everything, name,
                                                        pivot_ms),
                                     "%s=%s" % (name, form))

    def test_time_filter_boundaries(self):
        """The 5-way createdAt tie: Gt/Lt exclude it, Ge/Le include it."""
        everything = self.dump()
        tie = [o for o in everything if ms_of(o["createdAt"])
               == ms_of(TIE_INSTANT)]
        self.assertEqual(len(tie), 5)
        self.assertEqual([o["id"] for o in tie], sorted(o["id"] for o in tie))
        self.assertEqual(sorted(o["createdAt"] for o in tie),
                         ["2024-01-06T15:00:33.000Z"] * 4
                         + ["2024-01-06T15:00:33Z"])
        for value in ("2024-01-06T15:00:33Z", "2024-01-06T15:00:33.000Z",
                      "2024-01-06T16:00:33.000+01:00"):
            q = urllib.parse.quote(value)
            ge = self.json_call("GET", "/phone-number?limit=1000&createdAtGe="
                                + q + "&createdAtLe=" + q)
            self.assertEqual(ge, tie)
            gt = self.json_call("GET", "/phone-number?limit=1000&createdAtGt="
                                + q)
            lt = self.json_call("GET", "/phone-number?limit=1000&createdAtLt="
                                + q)
            self.assertEqual(len(gt) + len(lt) + 5, COUNT)
            self.assertEqual(gt + tie + lt, everything)
        self.assertEqual(self.json_call(
            "GET", "/phone-number?createdAtGt=2024-01-06T15:00:33.000Z"
            "&createdAtLt=2024-01-06T15:00:33.001Z"), [])

    def test_invalid_dates(self):
        """Bad date strings get the class-validator message."""
        self.assert_error("GET", "/phone-number?createdAtGt=yesterday"
                          "&updatedAtLe=2024-13-01", 400,
                          ["createdAtGt must be a valid ISO 8601 date string",
                           "updatedAtLe must be a valid ISO 8601 date string"])


class ListV2Test(MockTestCase):
    """GET /v2/phone-number: paged, sorted, searchable."""

    def page(self, query=""):
        """Decode one v2 page."""
        return self.json_call("GET", "/v2/phone-number" + query)

    def test_default_page_and_metadata(self):
        """Default page: 100 newest and the exact metadata."""
        everything = self.dump()
        got = self.page()
        self.assertEqual(list(got), ["results", "metadata"])
        self.assertEqual(got["results"], everything[:100])
        self.assertEqual(got["metadata"], {
            "itemsPerPage": 100, "totalItems": 300, "currentPage": 1,
            "totalPages": 3, "hasNextPage": True, "sortOrder": "DESC"})

    def test_paging(self):
        """page/limit slice the DESC order; past the end is empty."""
        everything = self.dump()
        got = self.page("?page=2&limit=7")
        self.assertEqual(got["results"], everything[7:14])
        self.assertEqual(got["metadata"], {
            "itemsPerPage": 7, "totalItems": 300, "currentPage": 2,
            "totalPages": 43, "hasNextPage": True, "sortOrder": "DESC"})
        got = self.page("?page=43&limit=7")
        self.assertEqual(got["results"], everything[294:])
        self.assertFalse(got["metadata"]["hasNextPage"])
        got = self.page("?page=44&limit=7")
        self.assertEqual(got["results"], [])
        self.assertEqual(got["metadata"]["currentPage"], 44)
        got = self.page("?limit=0")
        self.assertEqual(got, {"results": [], "metadata": {
            "itemsPerPage": 0, "totalItems": 300, "currentPage": 1,
            "totalPages": 0, "hasNextPage": False, "sortOrder": "DESC"}})

    def test_sort_order(self):
        """ASC and DESC by createdAt; ties ordered by id in both."""
        everything = self.dump()
        desc = self.page("?limit=1000&sortOrder=DESC")["results"]
        self.assertEqual(desc, everything)
        asc = self.page("?limit=1000&sortOrder=ASC&sortBy=createdAt")
        self.assertEqual(asc["metadata"]["sortOrder"], "ASC")
        keys = [(ms_of(o["createdAt"]), o["id"]) for o in asc["results"]]
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(len(keys), COUNT)
        tie = [o["id"] for o in asc["results"]
               if ms_of(o["createdAt"]) == ms_of(TIE_INSTANT)]
        self.assertEqual(len(tie), 5)
        self.assertEqual(tie, sorted(tie))
        self.assertEqual(tie, [o["id"] for o in desc
                               if ms_of(o["createdAt"]) == ms_of(TIE_INSTANT)])
        self.assertEqual(ms_of(asc["results"][0]["createdAt"]),
                         ms_of("2024-01-01T00:00:00Z"))
        self.assertEqual(self.page("?sortOrder=ASC&limit=3&page=2")["results"],
                         asc["results"][3:6])

    def test_search(self):
        """Partial, case-insensitive match on name, number and sipUri."""
        everything = self.dump()

        def expect(text):
            """What searching for `text` should find, DESC."""
            low = text.lower()
            return [o for o in everything
                    if any(isinstance(o.get(k), str) and low in o[k].lower()
                           for k in ("name", "number", "sipUri"))]

        number = next(o["number"] for o in everything
                      if o.get("number", "").startswith("+1"))
        cases = {"LINE 0001": 8, "zÜRICH": 1, '"Desk"': 1,
                 "SIP.vapi.AI": None, number[3:9]: 1, number: 1,
                 "+" + number[1:5]: None,
                 "no such thing": 0}
        for text, count in cases.items():
            got = self.page("?limit=1000&" + urllib.parse.urlencode(
                {"search": text}))
            want = expect(text)
            self.assertEqual(got["results"], want, text)
            self.assertEqual(got["metadata"]["totalItems"], len(want))
            if count is not None:
                self.assertEqual(len(want), count, text)
            else:
                self.assertGreater(len(want), 1, text)
        sip = expect("sip.vapi.ai")
        self.assertTrue(all("sipUri" in o for o in sip))
        self.assertTrue(any(o["provider"] == "vapi" and "number" not in o
                            for o in sip))
        got = self.page("?search=line%200001&limit=4&page=2&sortOrder=ASC")
        self.assertEqual(got["results"], expect("line 0001")[::-1][4:8])
        self.assertEqual(got["metadata"], {
            "itemsPerPage": 4, "totalItems": 8, "currentPage": 2,
            "totalPages": 2, "hasNextPage": False, "sortOrder": "ASC"})
        got = self.page("?search=nothing%20here")
        self.assertEqual(got["metadata"], {
            "itemsPerPage": 100, "totalItems": 0, "currentPage": 1,
            "totalPages": 0, "hasNextPage": False, "sortOrder": "DESC"})

    def test_search_with_time_filter(self):
        """search and the time filters combine."""
        everything = self.dump()
        pivot = everything[150]["createdAt"]
        got = self.page("?limit=1000&search=line&createdAtLe="
                        + urllib.parse.quote(pivot))
        want = [o for o in everything if "line" in (o.get("name") or "")
                .lower() and ms_of(o["createdAt"]) <= ms_of(pivot)]
        self.assertEqual(got["results"], want)

    def test_validation_errors(self):
        """Exact class-validator messages, in DTO order."""
        cases = {
            "?page=0": ["page must not be less than 1"],
            "?page=1.5": ["page must be an integer number"],
            "?page=x": ["page must be a number conforming to the specified "
                        "constraints"],
            "?sortOrder=asc": ["sortOrder must be one of the following "
                               "values: ASC, DESC"],
            "?sortBy=name": ["sortBy must be one of the following values: "
                             "createdAt, duration, cost"],
            "?search=" + "x" * 101: ["search must be shorter than or equal "
                                     "to 100 characters"],
            "?limit=5000&page=0&sortOrder=up": [
                "page must not be less than 1",
                "sortOrder must be one of the following values: ASC, DESC",
                "limit must not be greater than 1000"],
            "?foo=1&limit=5&bar=&foo=2": ["property foo should not exist",
                                          "property bar should not exist"],
            "?createdAtGe=2024-02-30": ["createdAtGe must be a valid ISO "
                                        "8601 date string"],
        }
        for query, message in cases.items():
            self.assert_error("GET", "/v2/phone-number" + query, 400, message)
        got = self.page("?search=" + "x" * 100)
        self.assertEqual(got["metadata"]["totalItems"], 0)


class ByIdTest(MockTestCase):
    """GET, PATCH and DELETE /phone-number/{id}."""

    def test_get(self):
        """Bad uuid 400, unknown 404, known returns the stored object."""
        everything = self.dump()
        for method in ("GET", "PATCH", "DELETE"):
            self.assert_error(method, "/phone-number/123", 400,
                              "Validation failed (uuid is expected)")
            self.assert_error(method, "/phone-number/" + UNKNOWN_ID, 404,
                              "Phone number not found")
        obj = everything[5]
        code, _, data = self.call("GET", "/phone-number/" + obj["id"])
        self.assertEqual(code, 200)
        self.assertEqual(json.loads(data), obj)
        self.assertEqual(list(json.loads(data)), list(obj))
        _, _, planted = self.call("GET", "/__mock/numbers/" + obj["id"])
        self.assertEqual(data, planted)
        self.assertEqual(self.json_call("GET", "/phone-number/"
                                        + obj["id"].upper()), obj)
        self.assert_error("GET", "/phone-numbers", 404,
                          "Cannot GET /phone-numbers")

    def test_patch(self):
        """null removes a field, values replace, updatedAt moves to now."""
        obj = next(o for o in self.dump() if o["provider"] == "twilio"
                   and isinstance(o.get("name"), str))
        path = "/phone-number/" + obj["id"]
        before = wall_ms()
        got = self.json_call("PATCH", path, {"name": None})
        self.assertNotIn("name", got)
        self.assertGreaterEqual(ms_of(got["updatedAt"]), before // 1000 * 1000)
        self.assertLessEqual(ms_of(got["updatedAt"]), wall_ms() + 1000)
        rest = {k: v for k, v in obj.items() if k not in ("name", "updatedAt")}
        self.assertEqual({k: v for k, v in got.items() if k != "updatedAt"},
                         rest)
        self.assertEqual(self.json_call("GET", path), got)
        got = self.json_call("PATCH", path, {"name": "Renamed",
                                             "smsEnabled": True,
                                             "provider": "twilio"})
        self.assertEqual((got["name"], got["smsEnabled"], got["provider"]),
                         ("Renamed", True, "twilio"))
        got = self.json_call("PATCH", path, {})
        self.assertEqual(got["name"], "Renamed")
        self.assertEqual(self.json_call("GET", path), got)

    def test_patch_rejected(self):
        """Read-only and foreign fields, a provider change, bad values."""
        obj = next(o for o in self.dump() if o["provider"] == "twilio")
        path = "/phone-number/" + obj["id"]
        self.assert_error("PATCH", path, 400,
                          ["property createdAt should not exist"],
                          {"createdAt": "2020-01-01T00:00:00Z"})
        self.assert_error("PATCH", path, 400,
                          ["property id should not exist",
                           "property orgId should not exist",
                           "property updatedAt should not exist"],
                          {"id": UNKNOWN_ID, "orgId": "x",
                           "updatedAt": "2020-01-01T00:00:00Z"})
        self.assert_error("PATCH", path, 400,
                          ["provider must be one of the following values: "
                           "twilio"], {"provider": "vonage"})
        self.assert_error("PATCH", path, 400,
                          ["property credentialId should not exist",
                           E164_MSG, "name must be shorter than or equal to "
                           "40 characters"],
                          {"credentialId": "c", "name": "n" * 41,
                           "number": "555"})
        vapi = next(o for o in self.dump() if o["provider"] == "vapi")
        self.assert_error("PATCH", "/phone-number/" + vapi["id"], 400,
                          ["property numberDesiredAreaCode should not exist"],
                          {"numberDesiredAreaCode": "415"})
        self.assertEqual(self.json_call("GET", path), obj)

    def test_delete(self):
        """DELETE answers the deleted object; it is gone afterwards."""
        everything = self.dump()
        obj = everything[0]
        path = "/phone-number/" + obj["id"]
        self.assertEqual(self.json_call("DELETE", path), obj)
        self.assert_error("GET", path, 404, "Phone number not found")
        self.assert_error("DELETE", path, 404, "Phone number not found")
        self.assertEqual(self.stats()["numbers"], COUNT - 1)
        self.assertEqual(self.json_call("GET", "/phone-number?limit=3"),
                         everything[1:4])


class CreateTest(MockTestCase):
    """POST /phone-number, one DTO per provider, and the legacy buy."""

    def created(self, body, path="/phone-number"):
        """Create, check the common fields, return the new object."""
        before = wall_ms()
        got = self.json_call("POST", path, body, 201)
        self.assertRegex(got["id"], UUID4_RE)
        self.assertEqual(got["orgId"], self.dump()[0]["orgId"])
        self.assertEqual(got["createdAt"], got["updatedAt"])
        self.assertRegex(got["createdAt"], MS_RE)
        self.assertGreaterEqual(ms_of(got["createdAt"]), before)
        self.assertLessEqual(ms_of(got["createdAt"]), wall_ms())
        self.assertEqual(self.json_call("GET", "/phone-number/" + got["id"]),
                         got)
        self.assertEqual(self.json_call("GET", "/phone-number?limit=1"), [got])
        return got

    def test_required_fields(self):
        """Each provider's required fields."""
        cases = {
            "byo-phone-number": ("credentialId",),
            "twilio": ("number", "twilioAccountSid"),
            "vonage": ("number", "credentialId"),
            "telnyx": ("number", "credentialId"),
        }
        for provider, fields in cases.items():
            message = ["%s must be a string" % f for f in fields]
            self.assert_error("POST", "/phone-number", 400, message,
                              {"provider": provider})
            nulls = dict.fromkeys(fields)
            self.assert_error("POST", "/phone-number", 400, message,
                              dict(nulls, provider=provider))
            self.assert_error("POST", "/phone-number", 400, message,
                              dict(dict.fromkeys(fields, 1),
                                   provider=provider))
        for body in ({}, {"provider": "plivo"}, {"provider": None}, [1]):
            self.assert_error("POST", "/phone-number", 400, [PROVIDER_MSG],
                              body)
        self.assert_error("POST", "/phone-number", 400,
                          "Unexpected token in JSON at position 1", b"{bad")

    def test_each_provider(self):
        """A minimal valid body for each provider is stored as sent."""
        bodies = [
            {"provider": "byo-phone-number", "credentialId": "cred-1",
             "number": "+14155550123", "name": "BYO"},
            {"provider": "byo-phone-number", "credentialId": "cred-2",
             "number": "ext123", "numberE164CheckEnabled": False},
            {"provider": "twilio", "number": "+14155550124",
             "twilioAccountSid": "AC1", "twilioAuthToken": "tok",
             "smsEnabled": False},
            {"provider": "vonage", "number": "+442071838750",
             "credentialId": "cred-3"},
            {"provider": "telnyx", "number": "+14155550125",
             "credentialId": "cred-4", "assistantId": None},
        ]
        for body in bodies:
            got = self.created(body)
            self.assertEqual(got["status"], "active")
            for key, value in body.items():
                if value is None:
                    self.assertNotIn(key, got)
                else:
                    self.assertEqual(got[key], value)
        self.assertEqual(self.stats()["numbers"], COUNT + len(bodies))

    def test_vapi_numbers(self):
        """vapi numbers: area code, SIP-only, activating status."""
        got = self.created({"provider": "vapi"})
        self.assertEqual(got["status"], "activating")
        self.assertRegex(got["number"], r"^\+1415\d{7}$")
        got = self.created({"provider": "vapi",
                            "numberDesiredAreaCode": "212", "name": "N" * 40})
        self.assertRegex(got["number"], r"^\+1212\d{7}$")
        self.assertEqual(got["numberDesiredAreaCode"], "212")
        got = self.created({"provider": "vapi",
                            "sipUri": "sip:unit@sip.vapi.ai"})
        self.assertNotIn("number", got)
        self.assertEqual(got["sipUri"], "sip:unit@sip.vapi.ai")
        cases = {"41": "numberDesiredAreaCode must be longer than or equal "
                       "to 3 characters",
                 "4155": "numberDesiredAreaCode must be shorter than or "
                         "equal to 3 characters",
                 "4a5": "numberDesiredAreaCode must be a number string"}
        for area, message in cases.items():
            self.assert_error("POST", "/phone-number", 400, [message],
                              {"provider": "vapi",
                               "numberDesiredAreaCode": area})

    def test_ids_are_deterministic(self):
        """The same create after the same reset gets the same id."""
        first = self.json_call("POST", "/phone-number", {"provider": "vapi"},
                               201)
        self.reset()
        again = self.json_call("POST", "/phone-number", {"provider": "vapi"},
                               201)
        self.assertEqual((first["id"], first["number"]),
                         (again["id"], again["number"]))

    def test_validation_errors(self):
        """Whitelist, name length and E.164 messages."""
        cases = [
            ({"provider": "vonage", "number": "+14155550100",
              "credentialId": "c", "smsEnabled": True, "foo": 1},
             ["property smsEnabled should not exist",
              "property foo should not exist"]),
            ({"provider": "vapi", "name": "x" * 41},
             ["name must be shorter than or equal to 40 characters"]),
            ({"provider": "vapi", "name": 5},
             ["name must be a string"]),
            ({"provider": "twilio", "number": "4155550100",
              "twilioAccountSid": "AC1"}, [E164_MSG]),
            ({"provider": "telnyx", "number": "+04155550100",
              "credentialId": "c"}, [E164_MSG]),
            ({"provider": "byo-phone-number", "credentialId": "c",
              "number": "4155550100"}, [E164_MSG]),
            ({"provider": "byo-phone-number", "credentialId": "c",
              "number": "ext-12", "numberE164CheckEnabled": False},
             ["number must match /^\\+?[a-zA-Z0-9]+$/ regular expression"]),
            ({"provider": "byo-phone-number", "credentialId": "c",
              "number": "12", "numberE164CheckEnabled": False},
             ["number must be longer than or equal to 3 characters"]),
            ({"provider": "twilio", "number": "+14155550100",
              "twilioAccountSid": "AC1", "smsEnabled": "yes",
              "numberE164CheckEnabled": True},
             ["property numberE164CheckEnabled should not exist",
              "smsEnabled must be a boolean value"]),
            ({"provider": "vapi", "server": {"url": "https://x",
                                             "timeoutSeconds": 0}},
             ["server.timeoutSeconds must not be less than 1"]),
        ]
        for body, message in cases:
            self.assert_error("POST", "/phone-number", 400, message, body)
        self.assertEqual(self.stats()["numbers"], COUNT)

    def test_legacy_buy(self):
        """POST /phone-number/buy buys a vapi number by area code."""
        got = self.created({"areaCode": "646", "name": "Sales"},
                           "/phone-number/buy")
        self.assertEqual((got["provider"], got["status"], got["name"],
                          got["numberDesiredAreaCode"]),
                         ("vapi", "activating", "Sales", "646"))
        self.assertRegex(got["number"], r"^\+1646\d{7}$")
        cases = [({}, ["areaCode must be a string"]),
                 ({"areaCode": "64"}, ["areaCode must be longer than or "
                                       "equal to 3 characters"]),
                 ({"areaCode": "646", "numberDesiredAreaCode": "646"},
                  ["property numberDesiredAreaCode should not exist"])]
        for body, message in cases:
            self.assert_error("POST", "/phone-number/buy", 400, message, body)


class FaultTest(MockTestCase):
    """Fault injection through /__mock/faults."""

    def test_status_with_retry_after(self):
        """An error status with Retry-After, once, on matching requests."""
        self.fault({"kind": "status", "status": 503, "retry_after": 7,
                    "match": "GET /v2/phone-number"})
        code, _, _ = self.call("GET", "/phone-number?limit=1")
        self.assertEqual(code, 200)
        code, headers, data = self.call("GET", "/v2/phone-number?limit=1")
        self.assertEqual(code, 503)
        self.assertEqual(headers["Retry-After"], "7")
        self.assertEqual(json.loads(data), error_body(
            503, "Service Unavailable", "Service Unavailable"))
        code, headers, _ = self.call("GET", "/v2/phone-number?limit=1")
        self.assertEqual(code, 200)
        self.assertIsNone(headers["Retry-After"])
        self.assertEqual([(e["fault"], e["status"]) for e in self.log()],
                         [(None, 200), ("status", 503), (None, 200)])

    def test_skip_times_and_message(self):
        """skip/times choose which matching requests fail."""
        self.fault({"kind": "status", "status": 429, "skip": 1, "times": 2,
                    "message": "Too many requests", "retry_after": "Wed, 21 "
                    "Oct 2026 07:28:00 GMT"})
        codes = []
        for _ in range(4):
            code, headers, data = self.call("GET", "/phone-number?limit=1")
            codes.append(code)
            if code == 429:
                self.assertEqual(json.loads(data), error_body(
                    429, "Too many requests", "Too Many Requests"))
                self.assertEqual(headers["Retry-After"],
                                 "Wed, 21 Oct 2026 07:28:00 GMT")
        self.assertEqual(codes, [200, 429, 429, 200])
        rules = self.json_call("GET", "/__mock/faults")
        self.assertEqual(rules[0]["seen"], 4)
        self.json_call("DELETE", "/__mock/faults")
        self.assertEqual(self.json_call("GET", "/__mock/faults"), [])

    def test_bad_rules(self):
        """Unknown kinds and bad fields are rejected."""
        self.assert_error("POST", "/__mock/faults", 400,
                          "fault kind must be one of: latency, status, "
                          "malformed, truncate, cut, stall, html, "
                          "content_type, body, corrupt", {"kind": "boom"})
        self.assert_error("POST", "/__mock/faults", 400,
                          "status must be in 100..999",
                          {"kind": "status", "status": 42})

    def test_malformed(self):
        """A 200 with a broken JSON body."""
        self.fault({"kind": "malformed"})
        code, headers, data = self.call("GET", "/phone-number")
        self.assertEqual((code, data), (200, b'{"results": [ {"id": '))
        self.assertEqual(headers["Content-Type"], JSON_CT)

    def test_cut(self):
        """The connection is closed without an answer."""
        self.fault({"kind": "cut"})
        conn = self.connect()
        conn.request("GET", "/phone-number?limit=2",
                     headers={"Authorization": "Bearer " + KEY})
        with self.assertRaises((http.client.RemoteDisconnected,
                                ConnectionError)):
            conn.getresponse()
        conn.close()
        code, _, _ = self.call("GET", "/phone-number?limit=2")
        self.assertEqual(code, 200)
        self.assertEqual([(e["fault"], e["status"]) for e in self.log()],
                         [("cut", None), (None, 200)])

    def test_truncate(self):
        """Full Content-Length, half the body, then close."""
        _, _, full = self.call("GET", "/phone-number?limit=20")
        self.fault({"kind": "truncate"})
        conn = self.connect()
        conn.request("GET", "/phone-number?limit=20",
                     headers={"Authorization": "Bearer " + KEY})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Content-Length"), str(len(full)))
        self.assertEqual(resp.getheader("Connection"), "close")
        with self.assertRaises(http.client.IncompleteRead) as ctx:
            resp.read()
        self.assertEqual(ctx.exception.partial, full[:len(full) // 2])

    def test_html(self):
        """An nginx-style HTML error page."""
        self.fault({"kind": "html", "status": 502})
        code, headers, data = self.call("GET", "/phone-number")
        self.assertEqual(code, 502)
        self.assertEqual(headers["Content-Type"], "text/html")
        self.assertEqual(data, b"<html>\r\n<head><title>502 Bad Gateway"
                         b"</title></head>\r\n<body>\r\n<center><h1>502 Bad "
                         b"Gateway</h1></center>\r\n<hr><center>nginx"
                         b"</center>\r\n</body>\r\n</html>\r\n")

    def test_content_type(self):
        """The normal body under another Content-Type, or none at all."""
        _, _, normal = self.call("GET", "/phone-number?limit=3")
        self.fault({"kind": "content_type", "value": "text/plain"},
                   {"kind": "content_type", "value": None, "skip": 1})
        code, headers, data = self.call("GET", "/phone-number?limit=3")
        self.assertEqual((code, headers["Content-Type"], data),
                         (200, "text/plain", normal))
        code, headers, data = self.call("GET", "/phone-number?limit=3")
        self.assertEqual((code, headers["Content-Type"], data),
                         (200, None, normal))

    def test_body(self):
        """An arbitrary body, as text or as a JSON value."""
        self.fault({"kind": "body", "status": 200, "text": "not json",
                    "content_type": "text/plain"},
                   {"kind": "body", "status": 500, "text": {"results": []},
                    "skip": 1})
        code, headers, data = self.call("GET", "/phone-number")
        self.assertEqual((code, headers["Content-Type"], data),
                         (200, "text/plain", b"not json"))
        code, headers, data = self.call("GET", "/phone-number")
        self.assertEqual((code, headers["Content-Type"], data),
                         (500, JSON_CT, b'{"results":[]}'))

    def test_latency(self):
        """The answer is delayed by ms and otherwise normal."""
        _, _, normal = self.call("GET", "/phone-number?limit=2")
        self.fault({"kind": "latency", "ms": 300})
        start = time.monotonic()
        code, _, data = self.call("GET", "/phone-number?limit=2")
        self.assertGreaterEqual(time.monotonic() - start, 0.29)
        self.assertEqual((code, data), (200, normal))

    def test_stall(self):
        """Headers and 10 bytes, a pause of ms, then the connection closes."""
        _, _, normal = self.call("GET", "/phone-number?limit=2")
        self.fault({"kind": "stall", "ms": 300})
        conn = self.connect()
        start = time.monotonic()
        conn.request("GET", "/phone-number?limit=2",
                     headers={"Authorization": "Bearer " + KEY})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Content-Length"), str(len(normal)))
        with self.assertRaises(http.client.IncompleteRead) as ctx:
            resp.read()
        self.assertGreaterEqual(time.monotonic() - start, 0.29)
        self.assertEqual(ctx.exception.partial, normal[:10])

    def corrupted(self, seed):
        """Body of a fresh mock's first request under a corrupt fault."""
        self.reset()
        self.fault({"kind": "corrupt", "seed": seed})
        code, _, data = self.call("GET", "/phone-number?limit=20")
        self.assertEqual(code, 200)
        return data

    def test_corrupt_is_reproducible(self):
        """Same seed and request number: the same damage."""
        _, _, normal = self.call("GET", "/phone-number?limit=20")
        first = self.corrupted(5)
        self.assertNotEqual(first, normal)
        self.assertEqual(self.corrupted(5), first)
        self.assertNotEqual(self.corrupted(6), first)

    def test_body_headers(self):
        """A body fault adds its headers, after the standard ones."""
        self.fault({"kind": "body", "status": 302, "content_type": "text/plain",
                    "text": "moved", "headers": {
                        "Location": "http://127.0.0.2:9/steal",
                        "X-Empty": "", "X-Note": "Zürich ✓"}})
        conn = self.connect()
        resp, data = self.raw(conn, "GET", "/v2/phone-number?limit=1")
        self.assertEqual((resp.status, data), (302, b"moved"))
        self.assertEqual(resp.getheaders(), [
            ("Content-Type", "text/plain"), ("Content-Length", "5"),
            ("Location", "http://127.0.0.2:9/steal"), ("X-Empty", ""),
            ("X-Note", "Zürich ✓".encode("utf-8").decode("latin-1")),
            ("Connection", "keep-alive")])
        resp, data = self.raw(conn, "GET", "/v2/phone-number?limit=1")
        self.assertEqual(resp.status, 200)
        self.assertIsNone(resp.getheader("Location"))
        self.assertEqual([(e["fault"], e["status"]) for e in self.log()],
                         [("body", 302), (None, 200)])

    def test_bad_body_headers(self):
        """Header names and values must be strings without CR or LF."""
        values_msg = "headers must be an object whose values are strings"
        text_msg = ("header names must be non-empty and without ':', and "
                    "names and values must not contain CR or LF")
        cases = [([], values_msg), ("Location: x", values_msg),
                 ({"X-A": 1}, values_msg), ({"X-A": None}, values_msg),
                 ({"X-A": ["v"]}, values_msg),
                 ({"X-A": "v\r\nX-B: w"}, text_msg),
                 ({"X-A": "v\n"}, text_msg), ({"X-A": "\rv"}, text_msg),
                 ({"X-A\r\nX-B": "v"}, text_msg), ({"": "v"}, text_msg),
                 ({"X-A:": "v"}, text_msg)]
        for headers, message in cases:
            self.assert_error("POST", "/__mock/faults", 400, message,
                              {"kind": "body", "text": "x",
                               "headers": headers})
        self.assertEqual(self.json_call("GET", "/__mock/faults"), [])
        self.fault({"kind": "body", "text": "x", "headers": None})
        code, headers, data = self.call("GET", "/phone-number")
        self.assertEqual((code, data), (200, b"x"))

    def test_every(self):
        """every=n: only each n-th request of the window gets the fault."""
        self.fault({"match": "GET /v2/phone-number", "kind": "status",
                    "status": 429, "retry_after": "0", "every": 3,
                    "times": 0})
        codes = [self.call("GET", "/v2/phone-number?limit=1")[0]
                 for _ in range(10)]
        self.assertEqual(codes, [200, 200, 429] * 3 + [200])
        self.assertEqual(self.call("GET", "/phone-number?limit=1")[0], 200)
        rules = self.json_call("GET", "/__mock/faults")
        self.assertEqual((rules[0]["every"], rules[0]["seen"]), (3, 10))

    def test_every_with_skip_and_times(self):
        """skip comes first, then times counts the faulted requests."""
        self.fault({"kind": "status", "status": 503, "skip": 1, "every": 2,
                    "times": 2})
        codes = [self.call("GET", "/phone-number?limit=1")[0]
                 for _ in range(8)]
        self.assertEqual(codes, [200, 200, 503, 200, 503, 200, 200, 200])
        self.json_call("DELETE", "/__mock/faults")
        self.fault({"kind": "status", "status": 500, "every": 1, "times": 2})
        codes = [self.call("GET", "/phone-number?limit=1")[0]
                 for _ in range(3)]
        self.assertEqual(codes, [500, 500, 200])

    def test_every_passes_to_next_rule(self):
        """Requests an every-rule skips go on to the next matching rule."""
        self.fault({"kind": "status", "status": 429, "every": 2, "times": 0},
                   {"kind": "html", "status": 502, "times": 0, "skip": 2})
        codes = [self.call("GET", "/phone-number?limit=1")[0]
                 for _ in range(6)]
        self.assertEqual(codes, [200, 429, 502, 429, 502, 429])
        self.assertEqual([e["fault"] for e in self.log()],
                         [None, "status", "html", "status", "html", "status"])

    def test_bad_every(self):
        """every must be an integer >= 1; rules without it do not show it."""
        for every in (0, -1, "2", 1.5, 2.0, True, None, [3]):
            self.assert_error("POST", "/__mock/faults", 400,
                              "every must be an integer >= 1",
                              {"kind": "status", "every": every})
        self.fault({"kind": "status", "times": 0})
        self.assertEqual(self.json_call("GET", "/__mock/faults"),
                         [{"kind": "status", "skip": 0, "times": 0,
                           "seen": 0}])

    def test_contains(self):
        """contains: only requests whose raw target holds the text match;
        only they count for skip, times and every."""
        self.fault({"match": "GET /v2/phone-number", "kind": "status",
                    "status": 429, "retry_after": "1", "times": 0,
                    "contains": "createdAtGe=2024-03-01"})
        cases = [
            ("/v2/phone-number?limit=1&createdAtGe=2024-01-01T00:00:00Z",
             200),
            ("/v2/phone-number?limit=1&createdAtGe=2024-03-01T00:00:00Z"
             "&createdAtLt=2024-05-01T00:00:00Z", 429),
            ("/phone-number?limit=1&createdAtGe=2024-03-01T00:00:00Z", 200),
            ("/v2/phone-number?limit=1&createdAtGe=2024-03-01T00%3A00%3A00Z",
             429),
            # The same instant, but the target does not hold the text.
            ("/v2/phone-number?limit=1&createdAtGe=2024%2D03%2D01T00:00:00Z",
             200),
            ("/v2/phone-number?createdAtGe=2024-03-01", 429)]
        for path, want in cases:
            code, headers, _ = self.call("GET", path)
            self.assertEqual(code, want, path)
            self.assertEqual(headers["Retry-After"],
                             "1" if want == 429 else None)
        self.assertEqual(self.json_call("GET", "/__mock/faults")[0]["seen"],
                         3)
        self.json_call("DELETE", "/__mock/faults")
        self.fault({"kind": "status", "status": 503, "contains": "%7E",
                    "skip": 1})
        codes = [self.call("GET", "/v2/phone-number?search=" + text)[0]
                 for text in ("%7E", "~", "%7e", "%7E", "%7E")]
        self.assertEqual(codes, [200, 200, 200, 503, 200])

    def test_bad_contains(self):
        """contains must be a string (null included)."""
        for contains in (5, None, True, ["x"], {"a": "b"}):
            self.assert_error("POST", "/__mock/faults", 400,
                              "contains must be a string",
                              {"kind": "status", "contains": contains})
        self.assertEqual(self.json_call("GET", "/__mock/faults"), [])
        rc, _, err = self.mockctl("fault", '{"kind":"cut","contains":1}')
        self.assertEqual((rc, err), (1, "mockctl: the mock answered 400 to "
                                     "POST /__mock/faults: contains must "
                                     "be a string\n"))
        self.assertEqual(self.mockctl("fault", '{"kind":"cut","contains":'
                                      '"page=2"}'), (0, "", ""))
        conn = self.connect()
        resp, _ = self.raw(conn, "GET", "/v2/phone-number?page=1")
        self.assertEqual(resp.status, 200)
        with self.assertRaises((http.client.RemoteDisconnected,
                                ConnectionError)):
            self.raw(conn, "GET", "/v2/phone-number?page=2")

    def test_every_concurrent(self):
        """Under concurrent clients every=3 hits exactly each third request."""
        self.fault({"match": "GET /v2/phone-number", "kind": "status",
                    "status": 429, "retry_after": "0", "every": 3,
                    "times": 0})
        codes = []
        lock = threading.Lock()

        def client():
            """30 list requests on one keep-alive connection."""
            conn = http.client.HTTPConnection("127.0.0.1", self.mock.port,
                                              timeout=20)
            try:
                for _ in range(30):
                    resp, _ = self.raw(conn, "GET", "/v2/phone-number?limit=2")
                    with lock:
                        codes.append(resp.status)
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(codes), 300)
        self.assertEqual(codes.count(429), 100)
        self.assertEqual(codes.count(200), 200)
        entries = sorted(self.log(), key=lambda e: e["seq"])
        self.assertEqual([e["seq"] for e in entries], list(range(1, 301)))
        self.assertEqual([e["status"] for e in entries], [200, 200, 429] * 100)


class MutationTest(MockTestCase):
    """Numbers created and deleted between two list requests."""

    def run_rule(self, at, create, delete):
        """Install a rule for the 2nd list request; return (before, after,
        created ids, deleted ids)."""
        before = self.dump()
        self.json_call("POST", "/__mock/mutations",
                       {"before_list_request": 2, "create": create,
                        "delete": delete, "at": at})
        self.json_call("GET", "/phone-number/" + before[0]["id"])
        self.json_call("GET", "/phone-number?limit=1")
        self.assertEqual(self.stats()["numbers"], COUNT)
        self.json_call("GET", "/v2/phone-number?limit=1")
        self.json_call("GET", "/phone-number?limit=1")
        after = self.dump()
        self.assertEqual(len(after), COUNT + create - delete)
        done = self.json_call("GET", "/__mock/mutations")
        self.assertEqual((len(done["created"]), len(done["deleted"])),
                         (create, delete))
        return before, after, done["created"], done["deleted"]

    def test_newest(self):
        """Deleted: the k newest; created: newer than all, 1 s apart."""
        before, after, created, deleted = self.run_rule("newest", 3, 2)
        self.assertEqual(deleted, [o["id"] for o in before[:2]])
        self.assertEqual([o["id"] for o in after[:3]], created[::-1])
        self.assertEqual(after[3:], before[2:])
        base = ms_of(before[0]["createdAt"])
        self.assertEqual([o["createdAt"] for o in after[:3]],
                         [iso(base + 3000), iso(base + 2000),
                          iso(base + 1000)])
        self.assertEqual([o["provider"] for o in after[2::-1]],
                         ["byo-phone-number", "twilio", "vonage"])

    def test_oldest(self):
        """Deleted: the k oldest; created: older than all, 1 s apart."""
        before, after, created, deleted = self.run_rule("oldest", 2, 3)
        self.assertEqual(deleted, [o["id"] for o in before[-3:]])
        self.assertEqual([o["id"] for o in after[-2:]], created)
        self.assertEqual(after[:-2], before[:-3])
        base = ms_of(before[-1]["createdAt"])
        self.assertEqual([o["createdAt"] for o in after[-2:]],
                         [iso(base - 1000), iso(base - 2000)])

    def test_middle(self):
        """In the middle (here inside the 5-way tie): same instant, by id."""
        before, after, created, deleted = self.run_rule("middle", 3, 2)
        self.assertEqual(deleted, [o["id"] for o in before[149:151]])
        ids = [o["id"] for o in after]
        self.assertEqual(ids[:148], [o["id"] for o in before[:148]])
        self.assertEqual(ids[154:], [o["id"] for o in before[153:]])
        tie = after[148:154]
        self.assertEqual({ms_of(o["createdAt"]) for o in tie},
                         {ms_of(TIE_INSTANT)})
        self.assertEqual([o["id"] for o in tie],
                         sorted(o["id"] for o in tie))
        self.assertTrue(set(created) <= {o["id"] for o in tie})

    def test_deterministic(self):
        """The same rule after the same reset creates the same numbers."""
        _, first, _, _ = self.run_rule("newest", 2, 0)
        self.reset()
        _, again, _, _ = self.run_rule("newest", 2, 0)
        self.assertEqual(first, again)
        self.json_call("DELETE", "/__mock/mutations")
        self.json_call("GET", "/phone-number?limit=1")
        self.assertEqual(self.stats()["numbers"], COUNT + 2)


class LogTest(MockTestCase):
    """The request log and connection reuse."""

    def test_log_and_keep_alive(self):
        """Method, raw path, body, status and connection serials."""
        conn = self.connect()
        first_id = self.dump()[0]["id"]
        self.raw(conn, "GET", "/v2/phone-number?limit=2&search=Line%2000")
        resp, _ = self.raw(conn, "POST", "/phone-number",
                           {"provider": "vapi", "name": "Kept alive"})
        self.assertEqual(resp.status, 201)
        self.assertEqual(resp.getheader("Connection"), "keep-alive")
        self.raw(conn, "GET", "/phone-number/%s?x=%%7E" % first_id)
        other = self.connect()
        self.raw(other, "GET", "/phone-number?createdAtGt=2024-01-01T00:00:00"
                 "%2B01:00", {"ignored": True})
        entries = self.log()
        self.assertEqual([(e["seq"], e["method"], e["path"], e["status"])
                          for e in entries],
                         [(1, "GET", "/v2/phone-number?limit=2&search=Line%2000",
                           200),
                          (2, "POST", "/phone-number", 201),
                          (3, "GET", "/phone-number/%s?x=%%7E" % first_id, 200),
                          (4, "GET", "/phone-number?createdAtGt=2024-01-01T00:"
                           "00:00%2B01:00", 200)])
        conns = [e["conn"] for e in entries]
        self.assertEqual(conns[0], conns[1])
        self.assertEqual(conns[1], conns[2])
        self.assertNotEqual(conns[2], conns[3])
        self.assertEqual(entries[1]["body"], {"provider": "vapi",
                                              "name": "Kept alive"})
        self.assertEqual(entries[1]["content_type"], "application/json")
        self.assertEqual(entries[3]["body"], {"ignored": True})
        self.assertEqual({e["auth"] for e in entries}, {"ok"})
        self.assertEqual(self.stats()["requests"], 4)
        self.json_call("DELETE", "/__mock/requests")
        self.assertEqual(self.log(), [])
        self.call("GET", "/phone-number?limit=1")
        self.assertEqual([(e["seq"], e["path"]) for e in self.log()],
                         [(1, "/phone-number?limit=1")])


class TimingTest(MockTestCase):
    """When requests ran: start_ms, end_ms and inflight in the log,
    max_inflight in the stats, real overlap under a latency fault, and the
    mockctl commands built on them (overlap, held-after, timeline,
    requests --sorted)."""

    LIST = "/v2/phone-number?limit=2&createdAtGe=%s-01T00:00:00.000Z"
    TIMELINE_RE = re.compile(r"^(\d+\.\d{3}) (\d+\.\d{3}|-) (\d+) ([A-Z]+) "
                             r"(\S+) (\d{3}|-)$")

    def parallel(self, paths):
        """GET every path at once, each on its own connection and thread;
        returns (statuses in path order, seconds from the start of the
        first request until the last answer)."""
        statuses = [None] * len(paths)
        conns = [self.connect() for _ in paths]
        for conn in conns:
            conn.connect()
        ready = threading.Barrier(len(paths) + 1)

        def client(index):
            """One request, once every client is ready."""
            try:
                ready.wait(10)
                resp, _ = self.raw(conns[index], "GET", paths[index])
                statuses[index] = resp.status
            except Exception as exc:   # reported by the main thread
                statuses[index] = repr(exc)

        threads = [threading.Thread(target=client, args=(i,))
                   for i in range(len(paths))]
        for t in threads:
            t.start()
        ready.wait(10)
        start = time.monotonic()
        for t in threads:
            t.join(30)
        return statuses, time.monotonic() - start

    def timeline(self):
        """mockctl timeline, as tuples of its fields."""
        rc, text, err = self.mockctl("timeline")
        self.assertEqual((rc, err), (0, ""))
        rows = []
        for line in text.splitlines():
            m = self.TIMELINE_RE.match(line)
            self.assertIsNotNone(m, line)
            rows.append(m.groups())
        return rows

    def wait_inflight(self, count):
        """Wait until the stats show `count` API requests in progress."""
        deadline = time.monotonic() + 10
        while self.stats()["inflight"] != count:
            self.assertLess(time.monotonic(), deadline,
                            "inflight never became %d" % count)
            time.sleep(0.01)

    def test_sequential(self):
        """One request after the other: inflight 1, each starts after the
        previous one ended; a log clear restarts the clock and
        max_inflight."""
        conn = self.connect()
        for path in ("/phone-number?limit=1", "/v2/phone-number?limit=5",
                     "/phone-number/" + UNKNOWN_ID):
            self.raw(conn, "GET", path)
        entries = self.log()
        self.assertEqual([(e["inflight"], e["retry_after"]) for e in entries],
                         [(1, None)] * 3)
        for entry in entries:
            self.assertIsInstance(entry["start_ms"], float)
            self.assertLessEqual(entry["start_ms"], entry["end_ms"])
        for before, after in zip(entries, entries[1:]):
            self.assertLessEqual(before["end_ms"], after["start_ms"])
        self.assertEqual((self.stats()["inflight"],
                          self.stats()["max_inflight"]), (0, 1))
        self.assertEqual(self.mockctl("overlap"), (0, "max_inflight=1\n", ""))
        cleared = time.monotonic()
        self.json_call("DELETE", "/__mock/requests")
        self.assertEqual(self.mockctl("overlap"), (0, "max_inflight=0\n", ""))
        self.raw(conn, "GET", "/phone-number?limit=1")
        since = (time.monotonic() - cleared) * 1000
        entry, = self.log()
        self.assertGreaterEqual(entry["start_ms"], 0)
        self.assertLessEqual(entry["end_ms"], since)
        self.reset()
        self.assertEqual(self.stats()["max_inflight"], 0)
        # A request sent once the previous answer has been read, even on a
        # new connection, never overlaps it.
        for n in range(100):
            method = "HEAD" if n % 3 == 0 else "GET"
            self.assertEqual(self.call(method, "/phone-number?limit=%d"
                                       % (n % 4))[0], 200)
        self.assertEqual(sorted({e["inflight"] for e in self.log()}), [1])
        self.assertEqual(self.stats()["max_inflight"], 1)

    def test_overlap(self):
        """Four requests on four connections under a 200 ms latency fault
        run at the same time: well under 4 x 200 ms, max_inflight 4."""
        self.fault({"kind": "latency", "ms": 200, "times": 0})
        paths = [self.LIST % month for month in
                 ("2024-01", "2024-02", "2024-03", "2024-04")]
        statuses, seconds = self.parallel(paths)
        self.assertEqual(statuses, [200] * 4)
        self.assertGreaterEqual(seconds, 0.19)
        self.assertLess(seconds, 0.6)
        self.assertEqual(self.mockctl("overlap"), (0, "max_inflight=4\n", ""))
        self.assertEqual(self.stats()["inflight"], 0)
        entries = self.log()
        self.assertEqual(sorted(e["inflight"] for e in entries), [1, 2, 3, 4])
        self.assertLess(max(e["start_ms"] for e in entries),
                        min(e["end_ms"] for e in entries))
        for entry in entries:
            self.assertGreaterEqual(entry["end_ms"] - entry["start_ms"], 199)
        rows = self.timeline()
        self.assertEqual([row[2] for row in rows], ["1", "2", "3", "4"])
        self.assertEqual(sorted(row[4] for row in rows), sorted(paths))
        self.assertEqual({(row[3], row[5]) for row in rows}, {("GET", "200")})
        starts = [float(row[0]) for row in rows]
        self.assertEqual(starts, sorted(starts))

    def test_rate(self):
        """mockctl rate: the most requests started within any window.
        Six requests 120 ms apart: at most 2 within 150 ms, 5 within
        500 ms, all 6 within 1000 ms; max_in_window of a list of start
        times counts a half-open window."""
        conn = self.connect()
        for _ in range(6):
            self.raw(conn, "GET", "/phone-number?limit=1")
            time.sleep(0.12)
        self.assertEqual(self.mockctl("rate", "--window-ms", "150"),
                         (0, "max_in_window=2 requests=6\n", ""))
        self.assertEqual(self.mockctl("rate", "--window-ms", "500"),
                         (0, "max_in_window=5 requests=6\n", ""))
        self.assertEqual(self.mockctl("rate"),
                         (0, "max_in_window=6 requests=6\n", ""))
        self.json_call("DELETE", "/__mock/requests")
        self.assertEqual(self.mockctl("rate"),
                         (0, "max_in_window=0 requests=0\n", ""))
        self.assertEqual(mockctl.max_in_window([0, 100, 1000, 1000.5], 1000), 3)
        self.assertEqual(mockctl.max_in_window([0, 999.9, 1000], 1000), 2)

    def test_latency_holds_no_lock(self):
        """While one request sleeps in a latency fault, other requests and
        control requests are answered at once."""
        self.fault({"kind": "latency", "ms": 600, "contains": "slow"})
        slow = threading.Thread(target=self.call, args=(
            "GET", "/v2/phone-number?limit=1&search=slow"))
        slow.start()
        self.addCleanup(slow.join)
        self.wait_inflight(1)
        start = time.monotonic()
        self.assertEqual(self.call("GET", "/v2/phone-number?limit=1")[0], 200)
        self.json_call("GET", "/__mock/requests")
        self.assertLess(time.monotonic() - start, 0.3)
        self.assertEqual(self.stats()["max_inflight"], 2)
        slow.join()
        self.assertEqual([e["inflight"] for e in self.log()], [1, 2])

    def test_counters_on_every_path(self):
        """Every way a request can end closes its entry and leaves no
        request in progress: faults that cut, truncate or stall, a client
        gone during a latency fault, errors, HEAD, 401 and 413."""
        self.fault({"kind": "cut", "contains": "cut"},
                   {"kind": "truncate", "contains": "truncate"},
                   {"kind": "stall", "ms": 150, "contains": "stall"},
                   {"kind": "malformed", "contains": "malformed"},
                   {"kind": "status", "status": 500, "contains": "status"})
        for word in ("cut", "truncate", "stall", "malformed", "status"):
            conn = self.connect()
            try:
                self.raw(conn, "GET", "/v2/phone-number?search=" + word)
            except (http.client.HTTPException, ConnectionError):
                pass
            conn.close()
        self.assertEqual(self.call("HEAD", "/v2/phone-number")[0], 200)
        self.assertEqual(self.call("GET", "/phone-number", key=None)[0], 401)
        self.assertEqual(self.call("POST", "/phone-number", b"x" * (1 << 21),
                                   {"Content-Type": "text/plain"})[0], 413)
        self.json_call("POST", "/__mock/faults",
                       {"kind": "latency", "ms": 300, "contains": "gone"})
        sock = socket.create_connection(("127.0.0.1", self.mock.port), 5)
        sock.sendall(b"GET /v2/phone-number?search=gone HTTP/1.1\r\n"
                     b"Host: x\r\nAuthorization: Bearer " + KEY.encode()
                     + b"\r\n\r\n")
        self.wait_inflight(1)
        sock.close()
        self.wait_inflight(0)
        entries = self.log()
        self.assertEqual([(e["fault"], e["status"]) for e in entries],
                         [("cut", None), ("truncate", 200), ("stall", 200),
                          ("malformed", 200), ("status", 500), (None, 200),
                          (None, 401), (None, 413), ("latency", 200)])
        for entry in entries:
            self.assertEqual(entry["inflight"], 1)
            self.assertLessEqual(entry["start_ms"], entry["end_ms"])
        self.assertGreaterEqual(entries[2]["end_ms"] - entries[2]["start_ms"],
                                149)
        self.assertGreaterEqual(entries[-1]["end_ms"] - entries[-1]["start_ms"],
                                299)
        self.assertEqual(self.stats()["max_inflight"], 1)

    def test_end_unknown_while_running(self):
        """A request in progress: end_ms null, "-" in the timeline."""
        self.fault({"kind": "latency", "ms": 400})
        slow = threading.Thread(target=self.call,
                                args=("GET", "/phone-number?limit=1"))
        slow.start()
        self.addCleanup(slow.join)
        self.wait_inflight(1)
        self.assertIsNone(self.log()[0]["end_ms"])
        row, = self.timeline()
        self.assertEqual(row[1:], ("-", "1", "GET", "/phone-number?limit=1",
                                   "-"))
        slow.join()
        row, = self.timeline()
        self.assertEqual(row[1:], (row[1], "1", "GET",
                                   "/phone-number?limit=1", "200"))
        self.assertGreaterEqual(float(row[1]) - float(row[0]), 399)

    def held(self, status=429):
        """mockctl held-after STATUS."""
        rc, text, err = self.mockctl("held-after", str(status))
        self.assertEqual((rc, err), (0, ""))
        return text

    def test_held_after(self):
        """held-after counts the requests started while a Retry-After
        answer holds, each once; an HTTP date does not hold."""
        self.fault({"kind": "status", "status": 429, "retry_after": "1",
                    "match": "GET /v2/phone-number", "times": 0,
                    "contains": "createdAtGe=2024-03-01"})
        window = [self.LIST % month for month in
                  ("2024-01", "2024-03", "2024-05")]
        self.assertEqual(self.held(), "answers=0 started_during_hold=0\n")
        # A client that goes on with its other windows at once.
        codes = [self.call("GET", path)[0] for path in window]
        codes.append(self.call("GET", window[0])[0])
        self.assertEqual(codes, [200, 429, 200, 200])
        self.assertEqual([e["retry_after"] for e in self.log()],
                         [None, "1", None, None])
        self.assertEqual(self.held(), "answers=1 started_during_hold=2\n")
        self.assertEqual(self.held(503), "answers=0 started_during_hold=0\n")
        # A client that waits the second out.
        self.json_call("DELETE", "/__mock/requests")
        self.assertEqual(self.call("GET", window[1])[0], 429)
        time.sleep(1.0)
        self.assertEqual(self.call("GET", window[0])[0], 200)
        self.assertEqual(self.held(), "answers=1 started_during_hold=0\n")
        # Two holds that overlap: the request inside both counts once.
        self.json_call("DELETE", "/__mock/requests")
        codes = [self.call("GET", path)[0]
                 for path in (window[1], window[1], window[2])]
        self.assertEqual(codes, [429, 429, 200])
        self.assertEqual(self.held(), "answers=2 started_during_hold=2\n")
        # Retry-After as a date holds nothing; a header of a body fault
        # counts like any other.
        self.json_call("DELETE", "/__mock/faults")
        self.json_call("DELETE", "/__mock/requests")
        self.fault({"kind": "status", "status": 429,
                    "retry_after": "Wed, 21 Oct 2026 07:28:00 GMT"},
                   {"kind": "body", "status": 429, "text": "slow down",
                    "headers": {"retry-after": "1"}, "skip": 2})
        codes = [self.call("GET", window[0])[0] for _ in range(4)]
        self.assertEqual(codes, [429, 200, 429, 200])
        self.assertEqual([e["retry_after"] for e in self.log()],
                         ["Wed, 21 Oct 2026 07:28:00 GMT", None, "1", None])
        self.assertEqual(self.held(), "answers=1 started_during_hold=1\n")

    def test_requests_sorted(self):
        """requests --sorted: the lines of requests, sorted by text."""
        conn = self.connect()
        for path in ("/v2/phone-number?limit=2", "/phone-number?limit=1",
                     "/phone-number/" + UNKNOWN_ID, "/phone-number?limit=1"):
            self.raw(conn, "GET", path)
        self.raw(self.connect(), "GET", "/phone-number?limit=0")
        for extra in ((), ("--conn",), ("--headers",)):
            rc, plain, _ = self.mockctl("requests", *extra)
            self.assertEqual(rc, 0)
            self.assertEqual(self.mockctl("requests", "--sorted", *extra),
                             (0, "".join(sorted(plain.splitlines(True))), ""))
        self.assertEqual(self.mockctl("requests", "--sorted")[1],
                         "GET /phone-number/%s\n"
                         "GET /phone-number?limit=0\n"
                         "GET /phone-number?limit=1\n"
                         "GET /phone-number?limit=1\n"
                         "GET /v2/phone-number?limit=2\n" % UNKNOWN_ID)
        # The order in which concurrent requests reach the log varies; the
        # sorted lines do not.
        self.json_call("DELETE", "/__mock/requests")
        self.fault({"kind": "latency", "ms": 50, "times": 0})
        paths = ["/v2/phone-number?limit=1&page=%d" % n for n in (3, 1, 4, 2)]
        self.assertEqual(self.parallel(paths)[0], [200] * 4)
        self.assertEqual(self.mockctl("requests", "--sorted", "--clear"),
                         (0, "".join("GET %s\n" % p for p in sorted(paths)),
                          ""))
        self.assertEqual(self.log(), [])


class GzipTest(MockTestCase):
    """Content-Encoding: gzip for large answers."""

    def test_gzip(self):
        """Large answers are gzipped on request, small ones never."""
        conn = self.connect()
        _, plain = self.raw(conn, "GET", "/phone-number?limit=50")
        resp, packed = self.raw(conn, "GET", "/phone-number?limit=50",
                                headers={"Accept-Encoding": "gzip"})
        self.assertEqual(resp.getheader("Content-Encoding"), "gzip")
        self.assertEqual(resp.getheader("Vary"), "Accept-Encoding")
        self.assertEqual(resp.getheader("Content-Length"), str(len(packed)))
        self.assertLess(len(packed), len(plain))
        self.assertEqual(gzip.decompress(packed), plain)
        _, again = self.raw(conn, "GET", "/phone-number?limit=50",
                            headers={"Accept-Encoding": "gzip, deflate"})
        self.assertEqual(again, packed)
        resp, small = self.raw(conn, "GET", "/phone-number?limit=0",
                               headers={"Accept-Encoding": "gzip"})
        self.assertIsNone(resp.getheader("Content-Encoding"))
        self.assertEqual(small, b"[]")
        resp, data = self.raw(conn, "GET", "/phone-number?limit=x",
                              headers={"Accept-Encoding": "gzip"})
        self.assertEqual(resp.status, 400)
        self.assertIsNone(resp.getheader("Content-Encoding"))
        self.assertEqual([e["accept_encoding"] for e in self.log()],
                         ["identity", "gzip", "gzip, deflate", "gzip",
                          "gzip"])


class KnobTest(MockTestCase):
    """The max_step and newest data-set knobs."""

    def test_default_dump_unchanged(self):
        """Default knobs give the data set recorded before they existed."""
        self.assertEqual(sha256(self.dump_raw()), BASELINE_DUMP_SHA256)
        self.reset(max_step=7200, newest=None)
        self.assertEqual(sha256(self.dump_raw()), BASELINE_DUMP_SHA256)
        self.reset(count=301)
        self.assertNotEqual(sha256(self.dump_raw()), BASELINE_DUMP_SHA256)
        self.json_call("POST", "/__mock/reset", {})
        self.assertEqual(sha256(self.dump_raw()), BASELINE_DUMP_SHA256)

    def test_newest_now(self):
        """newest=now: one whole-second shift, newest in the current second."""
        base = self.dump()
        start = wall_ms()
        self.assertEqual(self.reset(newest="now"),
                         {"ok": True, "numbers": COUNT})
        end = wall_ms()
        moved = self.dump()
        newest = ms_of(moved[0]["createdAt"])
        self.assertLessEqual(abs(newest - wall_ms()), 2000)
        self.assertTrue(start // 1000 <= newest // 1000 <= end // 1000)
        self.assert_shifted(base, moved)

    def assert_shifted(self, base, moved):
        """moved is base shifted by one whole-second offset; returns it."""
        self.assertEqual([o["id"] for o in moved], [o["id"] for o in base])
        offsets = set()
        for old, new in zip(base, moved):
            for field in ("createdAt", "updatedAt"):
                offsets.add(ms_of(new[field]) - ms_of(old[field]))
                self.assertEqual(bool(MS_RE.search(new[field])),
                                 bool(MS_RE.search(old[field])))
            rest = {k: v for k, v in old.items()
                    if k not in ("createdAt", "updatedAt")}
            self.assertEqual({k: v for k, v in new.items()
                              if k not in ("createdAt", "updatedAt")}, rest)
            self.assertEqual(list(new), list(old))
        self.assertEqual(len(offsets), 1)
        offset = offsets.pop()
        self.assertEqual(offset % 1000, 0)
        return offset

    def test_newest_iso(self):
        """newest=ISO: the newest createdAt lands in that second."""
        base = self.dump()
        self.reset(newest="2030-05-06T07:08:09.999Z")
        moved = self.dump()
        self.assertTrue(moved[0]["createdAt"].startswith(
            "2030-05-06T07:08:09"), moved[0]["createdAt"])
        offset = self.assert_shifted(base, moved)
        self.assertEqual(offset, ms_of("2030-05-06T07:08:09Z")
                         - ms_of(base[0]["createdAt"]) // 1000 * 1000)
        raw = self.dump_raw()
        self.reset(newest="2030-05-06T09:08:09+02:00")
        self.assertEqual(self.dump_raw(), raw)
        self.reset(newest="2030-05-06")
        self.assertTrue(self.dump()[0]["createdAt"].startswith(
            "2030-05-06T00:00:00"))
        self.reset(newest=None)
        self.assertEqual(sha256(self.dump_raw()), BASELINE_DUMP_SHA256)
        self.reset(newest=base[0]["createdAt"])
        self.assertEqual(sha256(self.dump_raw()), BASELINE_DUMP_SHA256)

    def test_max_step(self):
        """max_step bounds the gap between consecutive createdAt values."""
        for step in (1, 10, 1000):
            self.reset(max_step=step)
            asc = [ms_of(o["createdAt"]) for o in self.dump()][::-1]
            gaps = [b - a for a, b in zip(asc, asc[1:])]
            self.assertEqual(len(asc), COUNT)
            self.assertGreaterEqual(min(gaps), 0)
            self.assertLessEqual(max(gaps), step * 1000 + 999)
            self.assertGreaterEqual(max(gaps), step * 500)
            self.assertEqual(asc[0], ms_of("2024-01-01T00:00:00Z"))
        self.reset(max_step=10)
        raw = self.dump_raw()
        self.reset(max_step=10)
        self.assertEqual(self.dump_raw(), raw)

    def test_recent_share(self):
        """count 10000, max_step 1728, newest now: ~1% in the last 24 h."""
        self.reset(count=10000, max_step=1728, newest="now")
        since = iso(wall_ms() - 86400000)
        got = self.json_call("GET", "/v2/phone-number?limit=0&createdAtGt="
                             + since)
        self.assertTrue(50 <= got["metadata"]["totalItems"] <= 200,
                        got["metadata"])

    def test_bad_values(self):
        """Invalid knobs are rejected and leave the data set alone."""
        self.reset(count=10)
        cases = [({"max_step": 0}, "max_step must be an integer >= 1"),
                 ({"max_step": "10"}, "max_step must be an integer >= 1"),
                 ({"max_step": True}, "max_step must be an integer >= 1"),
                 ({"max_step": None}, "max_step must be an integer >= 1"),
                 ({"newest": "soon"}, NEWEST_MSG),
                 ({"newest": 5}, NEWEST_MSG),
                 ({"newest": "1970-01-02T00:00:00Z"}, RANGE_MSG),
                 ({"max_step": 10 ** 12}, RANGE_MSG),
                 ({"count": -1}, "count must be an integer >= 0 and seed an "
                                 "integer")]
        for fields, message in cases:
            body = dict({"count": COUNT, "seed": SEED}, **fields)
            self.assert_error("POST", "/__mock/reset", 400, message, body)
        self.assertEqual(self.stats()["numbers"], 10)

    def test_command_line(self):
        """--max-step and --newest, and resets defaulting to them."""
        mock = MockProcess("--count", "40", "--seed", "2", "--max-step", "60",
                           "--newest", "2031-01-01T00:00:00Z")
        self.addCleanup(mock.stop)
        code, _, raw = request(mock.url, "GET", "/__mock/numbers")
        self.assertEqual(code, 200)
        objs = json.loads(raw)
        self.assertEqual(len(objs), 40)
        self.assertTrue(objs[0]["createdAt"].startswith("2031-01-01T00:00:00"))
        asc = [ms_of(o["createdAt"]) for o in objs][::-1]
        self.assertLessEqual(max(b - a for a, b in zip(asc, asc[1:])), 60999)
        request(mock.url, "POST", "/__mock/reset", {})
        self.assertEqual(request(mock.url, "GET", "/__mock/numbers")[2], raw)
        request(mock.url, "POST", "/__mock/reset", {"newest": None})
        objs = json.loads(request(mock.url, "GET", "/__mock/numbers")[2])
        self.assertEqual(ms_of(objs[-1]["createdAt"]),
                         ms_of("2024-01-01T00:00:00Z"))
        for args, message in ((["--newest", "later"], NEWEST_MSG),
                              (["--max-step", "0"], "--max-step must be >= 1")):
            run = subprocess.run([sys.executable, MOCK, "--port", "0"] + args,
                                 stdin=subprocess.DEVNULL,
                                 capture_output=True, timeout=20)
            self.assertEqual(run.returncode, 2)
            self.assertEqual(run.stderr.decode().splitlines()[-1],
                             "vapi_mock.py: error: " + message)

    def test_mockctl_reset(self):
        """mockctl.py reset --max-step N --newest now|ISO."""
        self.assertEqual(self.mockctl("reset", "--count", "300", "--seed",
                                      "1", "--max-step", "7200"), (0, "", ""))
        self.assertEqual(sha256(self.dump_raw()), BASELINE_DUMP_SHA256)
        self.assertEqual(self.mockctl("reset", "--count", "50", "--max-step",
                                      "30", "--newest",
                                      "2030-01-01T00:00:00Z"), (0, "", ""))
        objs = self.dump()
        self.assertEqual(len(objs), 50)
        self.assertTrue(objs[0]["createdAt"].startswith("2030-01-01T00:00:00"))
        asc = [ms_of(o["createdAt"]) for o in objs][::-1]
        self.assertLessEqual(max(b - a for a, b in zip(asc, asc[1:])), 30999)
        self.assertEqual(self.mockctl("reset", "--newest", "now"),
                         (0, "", ""))
        self.assertLessEqual(abs(ms_of(self.dump()[0]["createdAt"])
                                 - wall_ms()), 2000)
        self.assertEqual(self.stats()["numbers"], COUNT)
        self.assertEqual(self.mockctl("reset", "--newest", "bogus"),
                         (1, "", "mockctl: the mock answered 400 to POST "
                          "/__mock/reset: " + NEWEST_MSG + "\n"))


class BehaviourTest(MockTestCase):
    """The behaviour switches under /__mock/behaviour."""

    def behave(self, switches, status=200):
        """POST /__mock/behaviour; returns the decoded answer."""
        return self.json_call("POST", "/__mock/behaviour", switches, status)

    def page(self, query=""):
        """Decode one v2 page."""
        return self.json_call("GET", "/v2/phone-number" + query)

    def test_control_api(self):
        """Merge, read, turn off, clear; reset clears; bad input is 400."""
        self.assertEqual(self.json_call("GET", "/__mock/behaviour"), {})
        self.assertEqual(self.behave({"no_v2": True, "cap_limit": 5}),
                         {"no_v2": True, "cap_limit": 5})
        self.assertEqual(self.behave({"reject_params": ["sortBy", "page",
                                                        "sortBy"]}),
                         {"no_v2": True, "cap_limit": 5,
                          "reject_params": ["sortBy", "page"]})
        self.assertEqual(self.behave({"no_v2": False, "cap_limit": None,
                                      "reject_params": []}), {})
        self.behave({"retention_days": 2.5, "v1_order": "ASC"})
        self.assertEqual(self.behave({"retention_since":
                                      "2024-01-05T00:00:00Z"}),
                         {"v1_order": "ASC",
                          "retention_since": "2024-01-05T00:00:00Z"})
        self.assertEqual(self.json_call("DELETE", "/__mock/behaviour"), {})
        self.assertEqual(self.json_call("GET", "/__mock/behaviour"), {})
        every = {"reject_params": ["search"], "no_v2": True,
                 "microseconds": True, "ignore_sort_order": True,
                 "cap_limit": 1, "no_has_next_page": True,
                 "minimal_metadata": True, "retention_days": 0,
                 "legacy_secrets": True, "v1_order": "DESC"}
        self.assertEqual(self.behave(every), every)
        self.reset()
        self.assertEqual(self.json_call("GET", "/__mock/behaviour"), {})
        self.behave({"cap_limit": 3})
        known = ("reject_params, no_v2, microseconds, ignore_sort_order, "
                 "cap_limit, no_has_next_page, minimal_metadata, "
                 "retention_days, retention_since, legacy_secrets, v1_order, "
                 "rename_fields")
        params = ("search, page, sortOrder, sortBy, limit, createdAtGt, "
                  "createdAtLt, createdAtGe, createdAtLe, updatedAtGt, "
                  "updatedAtLt, updatedAtGe, updatedAtLe")
        cases = (
            ({"no_v2": True, "bogus": 1},
             "unknown behaviour switch bogus (known: %s)" % known),
            ([], "expected a JSON object of behaviour switches"),
            ({"no_v2": 1}, "no_v2 must be true or false"),
            ({"microseconds": "ties"}, "microseconds must be true or false"),
            ({"cap_limit": 0}, "cap_limit must be an integer >= 1"),
            ({"cap_limit": 2.0}, "cap_limit must be an integer >= 1"),
            ({"cap_limit": True}, "cap_limit must be an integer >= 1"),
            ({"reject_params": "sortBy"},
             "reject_params must be an array of list query parameter "
             "names: " + params),
            ({"reject_params": ["cursor"]},
             "reject_params must be an array of list query parameter "
             "names: " + params),
            ({"retention_days": -1},
             "retention_days must be a number of days in 0..365000"),
            ({"retention_days": "30"},
             "retention_days must be a number of days in 0..365000"),
            ({"retention_since": "last week"},
             "retention_since must be an ISO 8601 date-time"),
            ({"retention_days": 1, "retention_since": "2024-01-01"},
             "retention_days and retention_since exclude each other"),
            ({"v1_order": "asc"}, "v1_order must be ASC or DESC"),
        )
        for body, message in cases:
            self.assert_error("POST", "/__mock/behaviour", 400, message, body)
        self.assertEqual(self.json_call("GET", "/__mock/behaviour"),
                         {"cap_limit": 3})
        self.assertEqual(self.log(), [])

    def test_mockctl(self):
        """mockctl.py behave, behaviour and behave-clear."""
        self.assertEqual(self.mockctl("behaviour"), (0, "{}\n", ""))
        self.assertEqual(self.mockctl("behave", '{"no_v2":true,"cap_limit":'
                                      '7,"reject_params":["sortBy"]}'),
                         (0, "", ""))
        self.assertEqual(self.mockctl("behaviour"),
                         (0, '{"cap_limit":7,"no_v2":true,"reject_params":'
                          '["sortBy"]}\n', ""))
        self.assertEqual(self.mockctl("behave", '{"no_v2":null}'),
                         (0, "", ""))
        self.assertEqual(self.mockctl("behaviour"),
                         (0, '{"cap_limit":7,"reject_params":["sortBy"]}\n',
                          ""))
        self.assertEqual(self.mockctl("behave", '{"cap_limit":-1}'),
                         (1, "", "mockctl: the mock answered 400 to POST "
                          "/__mock/behaviour: cap_limit must be an integer "
                          ">= 1\n"))
        self.assertEqual(self.mockctl("behave", "{"),
                         (1, "", "mockctl: the switches are not valid JSON: "
                          "Expecting property name enclosed in double "
                          "quotes: line 1 column 2 (char 1)\n"))
        self.assertEqual(self.mockctl("behave-clear"), (0, "", ""))
        self.assertEqual(self.mockctl("behaviour"), (0, "{}\n", ""))
        self.mockctl("behave", '{"no_v2":true}')
        self.assertEqual(self.mockctl("reset"), (0, "", ""))
        self.assertEqual(self.mockctl("behaviour"), (0, "{}\n", ""))

    def test_switches_off_change_nothing(self):
        """Switched on and off again, every answer is as before."""
        queries = ("/phone-number?limit=1000", "/v2/phone-number?limit=50"
                   "&page=2&sortOrder=ASC", "/v2/phone-number?search=line"
                   "&createdAtLe=2024-01-06T15:00:33Z")
        before = [self.call("GET", q)[2] for q in queries]
        dump = self.dump_raw()
        self.behave({"microseconds": True, "legacy_secrets": True,
                     "cap_limit": 2, "retention_days": 1,
                     "ignore_sort_order": True, "v1_order": "ASC",
                     "no_has_next_page": True})
        self.assertNotEqual([self.call("GET", q)[2] for q in queries],
                            before)
        self.json_call("DELETE", "/__mock/behaviour")
        self.assertEqual([self.call("GET", q)[2] for q in queries], before)
        self.assertEqual(self.dump_raw(), dump)
        self.assertEqual(sha256(dump), BASELINE_DUMP_SHA256)

    def test_v1_refuses_v2_parameters(self):
        """Without any switch v1 refuses page, search, sortOrder, sortBy."""
        for name, value in (("page", "1"), ("search", "x"),
                            ("sortOrder", "DESC"), ("sortBy", "createdAt")):
            self.assert_error("GET", "/phone-number?limit=5&%s=%s"
                              % (name, value), 400,
                              ["property %s should not exist" % name])

    def test_reject_params(self):
        """Listed parameters get 400 in NestJS's shape, in switch order."""
        everything = self.dump()
        self.behave({"reject_params": ["sortBy", "sortOrder"]})
        code, headers, data = self.call(
            "GET", "/v2/phone-number?limit=5&sortBy=createdAt")
        self.assertEqual((code, headers["Content-Type"]), (400, JSON_CT))
        self.assertEqual(data, b'{"message":["property sortBy should not '
                         b'exist"],"error":"Bad Request","statusCode":400}')
        code, _, data = self.call("GET", "/v2/phone-number?sortOrder=ASC"
                                  "&limit=x&sortBy=createdAt&foo=1")
        self.assertEqual(data, nest_body(400, [
            "property sortBy should not exist",
            "property sortOrder should not exist",
            "property foo should not exist",
            "limit must be a number conforming to the specified "
            "constraints"], "Bad Request"))
        self.assertEqual(self.page("?limit=5")["results"], everything[:5])
        # Other errors keep the usual shape.
        self.assert_error("GET", "/v2/phone-number?limit=x", 400,
                          ["limit must be a number conforming to the "
                           "specified constraints"])
        self.behave({"reject_params": ["createdAtLt", "limit"]})
        code, _, data = self.call("GET", "/phone-number?limit=5"
                                  "&createdAtLt=2024-01-05T00:00:00Z")
        self.assertEqual((code, data), (400, nest_body(400, [
            "property createdAtLt should not exist",
            "property limit should not exist"], "Bad Request")))
        code, _, data = self.call("GET", "/v2/phone-number?page=2&limit=1")
        self.assertEqual((code, data), (400, nest_body(
            400, ["property limit should not exist"], "Bad Request")))
        self.assertEqual(self.json_call("GET", "/phone-number"),
                         everything[:100])
        self.assertEqual([e["status"] for e in self.log()],
                         [400, 400, 200, 400, 400, 400, 200])

    def test_no_v2(self):
        """/v2/phone-number is an unknown route; v1 keeps working."""
        everything = self.dump()
        self.behave({"no_v2": True})
        for target in ("/v2/phone-number?limit=1000&createdAtLt="
                       "2024-01-05T00%3A00%3A00.000Z&sortOrder=DESC",
                       "/v2/phone-number", "/v2/phone-number?",
                       "/v2/phone-number/"):
            code, headers, data = self.call("GET", target)
            self.assertEqual((code, headers["Content-Type"]), (404, JSON_CT))
            self.assertEqual(data, nest_body(404, "Cannot GET " + target,
                                             "Not Found"))
        code, _, data = self.call("POST", "/v2/phone-number", {})
        self.assertEqual((code, data), (404, nest_body(
            404, "Cannot POST /v2/phone-number", "Not Found")))
        self.assertEqual(data, b'{"message":"Cannot POST /v2/phone-number",'
                         b'"error":"Not Found","statusCode":404}')
        self.assertEqual(self.json_call("GET", "/phone-number?limit=10"),
                         everything[:10])
        self.behave({"no_v2": False})
        self.assertEqual(self.page("?limit=3")["results"], everything[:3])

    def test_microseconds(self):
        """Stored microseconds order and filter; the text stays the same."""
        everything = self.dump()
        texts = {o["id"]: o for o in everything}
        self.behave({"microseconds": True})
        micro = self.dump()
        self.assertEqual({o["id"]: o for o in micro}, texts)
        keys = [(-us_of(o, "createdAt"), o["id"]) for o in micro]
        self.assertEqual(keys, sorted(keys))
        self.assertNotEqual(micro, everything)
        # Printed-millisecond ties: every member differs in storage.
        groups = {}
        for o in micro:
            groups.setdefault(ms_of(o["createdAt"]), []).append(o)
        ties = [g for g in groups.values() if len(g) > 1]
        self.assertEqual(sorted(len(g) for g in ties), [2] * 6 + [5])
        for group in ties:
            stored = [us_of(o, "createdAt") for o in group]
            self.assertEqual(len(set(stored)), len(group))
            self.assertEqual(stored, sorted(stored, reverse=True))
        tie = groups[ms_of(TIE_INSTANT)]
        self.assertEqual([micro_extra(o["id"]) for o in tie],
                         [772, 763, 677, 152, 54])
        self.assertEqual(self.json_call("GET", "/phone-number?limit=1000"),
                         micro)
        asc = self.page("?limit=1000&sortOrder=ASC")["results"]
        self.assertEqual(asc, micro[::-1])
        self.assertEqual(self.page("?limit=7&page=3")["results"],
                         micro[14:21])
        # createdAtLe at the printed instant misses the whole tie.
        q = urllib.parse.quote(TIE_INSTANT)
        le = self.json_call("GET", "/phone-number?limit=1000&createdAtLe=" + q)
        self.assertFalse({o["id"] for o in tie} & {o["id"] for o in le})
        gt = self.json_call("GET", "/phone-number?limit=1000&createdAtGt=" + q)
        self.assertEqual(gt[-5:], tie)
        self.assertEqual(self.json_call(
            "GET", "/phone-number?limit=1000&createdAtGe=" + q
            + "&createdAtLt=" + urllib.parse.quote(iso(ms_of(TIE_INSTANT)
                                                       + 1))), tie)
        pivots = [TIE_INSTANT, micro[40]["createdAt"], micro[77]["updatedAt"],
                  micro[120]["updatedAt"]]
        tests = {"Gt": lambda v, p: v > p, "Ge": lambda v, p: v >= p,
                 "Lt": lambda v, p: v < p, "Le": lambda v, p: v <= p}
        for text in pivots:
            pivot = ms_of(text) * 1000
            for name in DATE_FILTERS:
                field = "createdAt" if name.startswith("c") else "updatedAt"
                want = [o for o in micro
                        if tests[name[-2:]](us_of(o, field), pivot)]
                got = self.json_call("GET", "/phone-number?limit=1000&"
                                     + urllib.parse.urlencode({name: text}))
                self.assertEqual(got, want, "%s=%s" % (name, text))
        # Planted, created and mutated numbers get microseconds too.
        created = self.json_call("POST", "/phone-number", {
            "provider": "vapi", "numberDesiredAreaCode": "415"}, 201)
        self.json_call("POST", "/__mock/numbers", {
            "id": UNKNOWN_ID, "provider": "vapi",
            "createdAt": TIE_INSTANT, "updatedAt": TIE_INSTANT})
        tie = self.json_call("GET", "/phone-number?limit=1000&createdAtGe="
                             + q + "&createdAtLt=" + urllib.parse.quote(
                                 iso(ms_of(TIE_INSTANT) + 1)))
        self.assertEqual(micro_extra(UNKNOWN_ID), 936)
        self.assertEqual([micro_extra(o["id"]) for o in tie],
                         [936, 772, 763, 677, 152, 54])
        self.json_call("POST", "/__mock/mutations", {"at": "middle",
                                                     "create": 2,
                                                     "delete": 2})
        listed = self.json_call("GET", "/phone-number?limit=1000")
        keys = [(-us_of(o, "createdAt"), o["id"]) for o in listed]
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(len(listed), COUNT + 2)
        self.assertEqual(listed[0], created)
        self.json_call("DELETE", "/__mock/behaviour")
        listed = self.json_call("GET", "/phone-number?limit=1000")
        keys = [(-ms_of(o["createdAt"]), o["id"]) for o in listed]
        self.assertEqual(keys, sorted(keys))

    def test_ignore_sort_order(self):
        """v2 answers newest first even to sortOrder=ASC, and says ASC."""
        everything = self.dump()
        self.behave({"ignore_sort_order": True})
        got = self.page("?limit=3&page=2&sortOrder=ASC")
        self.assertEqual(got, {"results": everything[3:6], "metadata": {
            "itemsPerPage": 3, "totalItems": 300, "currentPage": 2,
            "totalPages": 100, "hasNextPage": True, "sortOrder": "ASC"}})
        self.assertEqual(self.page("?limit=1000")["results"], everything)

    def test_cap_limit(self):
        """Pages hold at most N rows; itemsPerPage echoes the limit."""
        everything = self.dump()
        self.behave({"cap_limit": 7})
        got = self.page("?limit=100")
        self.assertEqual(got, {"results": everything[:7], "metadata": {
            "itemsPerPage": 100, "totalItems": 300, "currentPage": 1,
            "totalPages": 43, "hasNextPage": True, "sortOrder": "DESC"}})
        got = self.page("?limit=1000&page=3&sortOrder=ASC")
        self.assertEqual(got["results"], everything[::-1][14:21])
        self.assertEqual(got["metadata"], {
            "itemsPerPage": 1000, "totalItems": 300, "currentPage": 3,
            "totalPages": 43, "hasNextPage": True, "sortOrder": "ASC"})
        got = self.page("?page=43")
        self.assertEqual(got["results"], everything[294:])
        self.assertFalse(got["metadata"]["hasNextPage"])
        got = self.page("?limit=5&page=2")
        self.assertEqual(got["results"], everything[5:10])
        self.assertEqual(got["metadata"]["totalPages"], 60)
        self.assertEqual(self.page("?limit=0")["metadata"], {
            "itemsPerPage": 0, "totalItems": 300, "currentPage": 1,
            "totalPages": 0, "hasNextPage": False, "sortOrder": "DESC"})
        self.assertEqual(self.json_call("GET", "/phone-number?limit=1000"),
                         everything[:7])
        self.assertEqual(self.json_call("GET", "/phone-number?limit=3"),
                         everything[:3])

    def test_metadata_shapes(self):
        """no_has_next_page and minimal_metadata trim the metadata."""
        everything = self.dump()
        self.behave({"no_has_next_page": True})
        self.assertEqual(self.page("?limit=4&page=2&sortOrder=ASC"), {
            "results": everything[::-1][4:8], "metadata": {
                "itemsPerPage": 4, "totalItems": 300, "currentPage": 2}})
        self.behave({"retention_days": 5})
        self.assertEqual(self.page("?limit=1")["metadata"], {
            "itemsPerPage": 1, "totalItems": 116, "currentPage": 1,
            "itemsBeyondRetention": True,
            "createdAtGe": "2024-01-08T01:26:26.814Z"})
        self.behave({"no_has_next_page": None, "minimal_metadata": True})
        self.assertEqual(self.page("?limit=1")["metadata"], {
            "itemsPerPage": 1, "totalItems": 116, "currentPage": 1})

    def test_retention(self):
        """Lists stop at the window start; the metadata says so."""
        everything = self.dump()
        self.behave({"retention_days": 5})
        start = ms_of(everything[0]["createdAt"]) - 5 * 86400000
        self.assertEqual(iso(start), "2024-01-08T01:26:26.814Z")
        inside = [o for o in everything if ms_of(o["createdAt"]) >= start]
        old = everything[len(inside):]
        self.assertEqual((len(inside), len(old)), (116, 184))
        self.assertEqual(self.json_call("GET", "/phone-number?limit=1000"),
                         inside)
        got = self.page("?limit=1000&sortOrder=ASC")
        asc = sorted(inside, key=lambda o: (ms_of(o["createdAt"]), o["id"]))
        self.assertEqual(got, {"results": asc, "metadata": {
            "itemsPerPage": 1000, "totalItems": 116, "currentPage": 1,
            "totalPages": 1, "hasNextPage": False, "sortOrder": "ASC",
            "itemsBeyondRetention": True,
            "createdAtGe": "2024-01-08T01:26:26.814Z"}})
        # A lower bound inside the window: no retention fields.
        for query in ("createdAtGe=2024-01-08T01:26:26.814Z",
                      "createdAtGt=2024-01-08T01:26:26.814Z",
                      "createdAtGe=2024-01-10T00:00:00Z"):
            meta = self.page("?limit=1&" + query)["metadata"]
            self.assertNotIn("itemsBeyondRetention", meta, query)
            self.assertNotIn("createdAtGe", meta, query)
        # Gt one millisecond earlier reaches before the window (by up to
        # 999 us), where no number is.
        meta = self.page("?limit=1&createdAtGt=2024-01-08T01:26:26.813Z")[
            "metadata"]
        self.assertEqual((meta["totalItems"], meta["createdAtGe"]),
                         (116, "2024-01-08T01:26:26.814Z"))
        self.assertNotIn("itemsBeyondRetention", meta)
        # An earlier lower bound: the window start is the bound applied.
        got = self.page("?limit=2&createdAtGe=2024-01-01T00:00:00Z")
        self.assertEqual(got["results"], inside[:2])
        self.assertEqual(got["metadata"]["createdAtGe"],
                         "2024-01-08T01:26:26.814Z")
        self.assertTrue(got["metadata"]["itemsBeyondRetention"])
        # A range wholly before the window: nothing, but it exists.
        got = self.page("?createdAtLt=2024-01-05T00:00:00Z")
        self.assertEqual(got, {"results": [], "metadata": {
            "itemsPerPage": 100, "totalItems": 0, "currentPage": 1,
            "totalPages": 0, "hasNextPage": False, "sortOrder": "DESC",
            "itemsBeyondRetention": True,
            "createdAtGe": "2024-01-08T01:26:26.814Z"}})
        # Nothing matching before the window: no itemsBeyondRetention.
        name = inside[3]["number"]
        got = self.page("?" + urllib.parse.urlencode({"search": name}))
        self.assertEqual(got["results"], [inside[3]])
        self.assertEqual(got["metadata"]["createdAtGe"],
                         "2024-01-08T01:26:26.814Z")
        self.assertNotIn("itemsBeyondRetention", got["metadata"])
        got = self.page("?createdAtLt=2024-01-01T00:00:00Z")
        self.assertNotIn("itemsBeyondRetention", got["metadata"])
        # By id: not limited.
        self.assertEqual(self.json_call("GET", "/phone-number/"
                                        + old[0]["id"]), old[0])
        # retention_since: the given instant, replacing retention_days.
        self.assertEqual(self.behave({"retention_since":
                                      "2024-01-10T02:00:00+02:00"}),
                         {"retention_since": "2024-01-10T02:00:00+02:00"})
        start = ms_of("2024-01-10T00:00:00Z")
        inside = [o for o in everything if ms_of(o["createdAt"]) >= start]
        got = self.page("?limit=1000")
        self.assertEqual(got["results"], inside)
        self.assertEqual(got["metadata"]["totalItems"], len(inside))
        self.assertEqual(got["metadata"]["createdAtGe"],
                         "2024-01-10T00:00:00.000Z")
        # The window is fixed when set: a new number does not move it.
        self.behave({"retention_days": 5})
        self.json_call("POST", "/phone-number", {
            "provider": "vapi", "numberDesiredAreaCode": "415"}, 201)
        self.assertEqual(self.page("?limit=1")["metadata"]["totalItems"], 117)
        self.json_call("DELETE", "/__mock/behaviour")
        self.assertEqual(self.page("?limit=1")["metadata"]["totalItems"], 301)

    def test_retention_with_microseconds(self):
        """The window starts at the first microsecond of its millisecond."""
        everything = self.dump()
        self.behave({"retention_since": TIE_INSTANT, "microseconds": True})
        got = self.json_call("GET", "/phone-number?limit=1000")
        self.assertEqual(got[-5:], self.json_call(
            "GET", "/phone-number?limit=1000&createdAtGe="
            + urllib.parse.quote(TIE_INSTANT))[-5:])
        self.assertEqual(len(got), len([o for o in everything if ms_of(
            o["createdAt"]) >= ms_of(TIE_INSTANT)]))

    def test_legacy_secrets(self):
        """Pre-2025 fields on stored objects; writes still refuse them."""
        everything = self.dump()
        plain = {"id": UNKNOWN_ID, "provider": "vapi",
                 "createdAt": "2024-01-02T00:00:00.000Z",
                 "updatedAt": "2024-01-02T00:00:00.000Z"}
        self.json_call("POST", "/__mock/numbers", plain)
        self.behave({"legacy_secrets": True})
        legacy = {o["id"]: o for o in self.dump()}
        self.assertEqual(len(legacy), COUNT + 1)
        for obj in everything + [plain]:
            got = legacy[obj["id"]]
            secret = legacy_secret(obj["id"])
            self.assertEqual(list(got)[-2:], ["serverUrl", "serverUrlSecret"])
            want = dict(obj)
            if "server" in obj:
                want["server"] = dict(obj["server"], secret=secret)
                self.assertEqual(list(got["server"])[-1], "secret")
                want["serverUrl"] = obj["server"]["url"]
            else:
                want["serverUrl"] = ("https://legacy-hooks.example.com/vapi/"
                                     + obj["id"])
            want["serverUrlSecret"] = secret
            self.assertEqual(got, want)
        self.assertEqual(sum("server" in o for o in everything), 48)
        with_server = next(o for o in everything if "server" in o)
        path = "/phone-number/" + with_server["id"]
        self.assertEqual(self.json_call("GET", path),
                         legacy[with_server["id"]])
        self.assertEqual(self.json_call("GET", "/phone-number?limit=1000"),
                         self.dump())
        # Writes that carry the legacy fields are refused.
        echo = legacy[with_server["id"]]
        self.assert_error("PATCH", path, 400,
                          ["server.property secret should not exist"],
                          {"server": echo["server"]})
        self.assert_error("PATCH", path, 400,
                          ["property serverUrlSecret should not exist"],
                          {"serverUrlSecret": "x"})
        self.assert_error("PATCH", path, 400,
                          ["property serverUrl should not exist",
                           "property serverUrlSecret should not exist",
                           "server.property secret should not exist"],
                          {"serverUrl": echo["serverUrl"],
                           "serverUrlSecret": echo["serverUrlSecret"],
                           "server": echo["server"], "name": "x"})
        self.assert_error("POST", "/phone-number", 400,
                          ["property serverUrl should not exist"],
                          {"provider": "vapi", "serverUrl": "https://x"})
        # A new server replaces the legacy one; the serverUrl fields stay.
        got = self.json_call("PATCH", path, {
            "server": {"url": "https://new.example.com/hook"}})
        self.assertEqual(got["server"],
                         {"url": "https://new.example.com/hook"})
        self.assertEqual((got["serverUrl"], got["serverUrlSecret"]),
                         (echo["serverUrl"], echo["serverUrlSecret"]))
        self.assertEqual(self.json_call("GET", path), got)
        got = self.json_call("PATCH", "/phone-number/" + UNKNOWN_ID,
                             {"server": {"url": "https://b.example.com"}})
        self.assertEqual(got["server"], {"url": "https://b.example.com"})
        # Numbers created through the API are current ones.
        created = self.json_call("POST", "/phone-number", {
            "provider": "vapi", "numberDesiredAreaCode": "415",
            "server": {"url": "https://c.example.com"}}, 201)
        self.assertNotIn("serverUrl", created)
        self.assertEqual(created["server"], {"url": "https://c.example.com"})
        # Planted numbers get them; fields already there are kept.
        self.json_call("POST", "/__mock/numbers", {
            "id": "11111111-1111-4111-8111-111111111111", "provider": "twilio",
            "serverUrl": "https://kept.example.com",
            "server": {"url": "https://s.example.com", "secret": "s3"},
            "createdAt": "2024-01-02T00:00:00.000Z",
            "updatedAt": "2024-01-02T00:00:00.000Z"})
        self.assertEqual(self.json_call(
            "GET", "/phone-number/11111111-1111-4111-8111-111111111111"), {
                "id": "11111111-1111-4111-8111-111111111111",
                "provider": "twilio", "serverUrl": "https://kept.example.com",
                "server": {"url": "https://s.example.com", "secret": "s3"},
                "createdAt": "2024-01-02T00:00:00.000Z",
                "updatedAt": "2024-01-02T00:00:00.000Z",
                "serverUrlSecret": legacy_secret(
                    "11111111-1111-4111-8111-111111111111")})
        self.json_call("DELETE", "/__mock/behaviour")
        self.assertNotIn(b"serverUrlSecret", self.dump_raw())
        now = {o["id"]: o for o in self.dump()}
        self.assertEqual([now[o["id"]] for o in everything
                          if o is not with_server],
                         [o for o in everything if o is not with_server])

    def test_v1_order(self):
        """v1_order ASC lists oldest first, ties by id."""
        everything = self.dump()
        self.behave({"v1_order": "ASC"})
        asc = sorted(everything, key=lambda o: (ms_of(o["createdAt"]),
                                                o["id"]))
        self.assertEqual(self.json_call("GET", "/phone-number?limit=1000"),
                         asc)
        self.assertEqual(self.json_call("GET", "/phone-number?limit=4&"
                                        "createdAtGt=2024-01-06T15:00:33Z"),
                         [o for o in asc if ms_of(o["createdAt"])
                          > ms_of(TIE_INSTANT)][:4])
        self.assertEqual(self.page("?limit=1000")["results"], everything)
        self.behave({"v1_order": "DESC"})
        self.assertEqual(self.json_call("GET", "/phone-number?limit=1000"),
                         everything)

    def test_html_auth_and_rate_limit(self):
        """The html fault gives a proxy's 403 or 429 page (+ Retry-After)."""
        self.fault({"kind": "html", "status": 403},
                   {"kind": "html", "status": 429, "retry_after": "2",
                    "skip": 1})
        code, headers, data = self.call("GET", "/phone-number")
        self.assertEqual((code, headers["Content-Type"]), (403, "text/html"))
        self.assertIsNone(headers["Retry-After"])
        self.assertEqual(data, b"<html>\r\n<head><title>403 Forbidden"
                         b"</title></head>\r\n<body>\r\n<center><h1>403 "
                         b"Forbidden</h1></center>\r\n<hr><center>nginx"
                         b"</center>\r\n</body>\r\n</html>\r\n")
        code, headers, data = self.call("GET", "/phone-number")
        self.assertEqual((code, headers["Content-Type"],
                          headers["Retry-After"]), (429, "text/html", "2"))
        self.assertEqual(data, b"<html>\r\n<head><title>429 Too Many "
                         b"Requests</title></head>\r\n<body>\r\n<center><h1>"
                         b"429 Too Many Requests</h1></center>\r\n<hr><center>"
                         b"nginx</center>\r\n</body>\r\n</html>\r\n")
        self.assertEqual([(e["status"], e["fault"]) for e in self.log()],
                         [(403, "html"), (429, "html")])


def renamed(obj, mapping):
    """The test's own rename: each key in the mapping renamed in place, or
    dropped when mapped to ""; other keys unchanged (no name clashes)."""
    out = {}
    for key, value in obj.items():
        name = mapping.get(key, key)
        if name:
            out[name] = value
    return out


class RenameFieldsTest(MockTestCase):
    """The "rename_fields" behaviour switch: renamed or dropped fields in
    every served object, nothing else changed."""

    RENAME = {"orgId": "organizationId"}
    MESSAGE = ('rename_fields must be an object mapping field names to a '
               'new name, or to "" to drop the field')

    def behave(self, switches, status=200):
        """POST /__mock/behaviour; returns the decoded answer."""
        return self.json_call("POST", "/__mock/behaviour", switches, status)

    def assert_same(self, got, want):
        """Equal JSON values, with the same key order in every object."""
        self.assertEqual(json.dumps(got), json.dumps(want))

    def test_rename_everywhere(self):
        """orgId -> organizationId in v1 and v2 lists, GET by id and the
        answers of POST, buy, PATCH and DELETE, renamed in place; the
        control routes show the stored objects."""
        everything = self.dump()
        stored = self.dump_raw()
        self.assertEqual(list(everything[0])[:2], ["id", "orgId"])
        self.assertEqual(self.behave({"rename_fields": self.RENAME}),
                         {"rename_fields": self.RENAME})
        want = [renamed(o, self.RENAME) for o in everything]
        self.assertEqual(list(want[0])[:2], ["id", "organizationId"])
        self.assert_same(self.json_call("GET", "/phone-number?limit=1000"),
                         want)
        self.assert_same(self.json_call("GET", "/phone-number?limit=3"),
                         want[:3])
        got = self.json_call("GET", "/v2/phone-number?limit=7&page=2")
        self.assert_same(got["results"], want[7:14])
        self.assertEqual(got["metadata"], {
            "itemsPerPage": 7, "totalItems": COUNT, "currentPage": 2,
            "totalPages": -(-COUNT // 7), "hasNextPage": True,
            "sortOrder": "DESC"})
        target = everything[5]
        path = "/phone-number/" + target["id"]
        self.assert_same(self.json_call("GET", path),
                         renamed(target, self.RENAME))
        # The control routes are unchanged.
        self.assertEqual(self.dump_raw(), stored)
        self.assert_same(self.json_call("GET", "/__mock/numbers/"
                                        + target["id"]), target)
        # Mutations answer the renamed object; storage keeps orgId.
        created = self.json_call("POST", "/phone-number", {
            "provider": "vapi", "numberDesiredAreaCode": "415",
            "name": "Renamed"}, 201)
        self.assertEqual(list(created)[:2], ["id", "organizationId"])
        self.assertNotIn("orgId", created)
        raw = self.json_call("GET", "/__mock/numbers/" + created["id"])
        self.assert_same(created, renamed(raw, self.RENAME))
        bought = self.json_call("POST", "/phone-number/buy",
                                {"areaCode": "646"}, 201)
        self.assertEqual(list(bought)[:2], ["id", "organizationId"])
        patched = self.json_call("PATCH", path, {"name": "Patched"})
        self.assertEqual(patched["name"], "Patched")
        self.assertNotIn("orgId", patched)
        raw = self.json_call("GET", "/__mock/numbers/" + target["id"])
        self.assertEqual(raw["orgId"], target["orgId"])
        self.assert_same(patched, renamed(raw, self.RENAME))
        self.assert_same(self.json_call("GET", path), patched)
        deleted = self.json_call("DELETE", path)
        self.assert_same(deleted, patched)
        self.assert_error("GET", path, 404, "Phone number not found")
        self.assertEqual(len(self.dump()), COUNT + 1)
        self.assertTrue(all("orgId" in o and "organizationId" not in o
                            for o in self.dump()))

    def test_drop_and_filters(self):
        """"" drops a field; filters, sort, paging and metadata work on the
        stored values, even of a renamed or dropped createdAt."""
        queries = (
            "/v2/phone-number?limit=9&createdAtGe=2024-01-06T15:00:33Z",
            "/v2/phone-number?limit=9&page=3&createdAtGe=2024-01-06T15:00:33Z",
            "/v2/phone-number?limit=4&page=2&sortOrder=ASC"
            "&createdAtLt=2024-01-06T15:00:34Z&createdAtGt=2024-01-02",
            "/v2/phone-number?limit=50&search=line",
            "/v2/phone-number?limit=20&updatedAtLe=2024-01-08T00:00:00Z",
            "/phone-number?limit=6&createdAtLe=2024-01-06T15:00:33Z",
            "/phone-number?limit=1000")
        before = [self.json_call("GET", q) for q in queries]
        self.assertTrue(all(before))
        for mapping in ({"createdAt": "", "name": ""},
                        {"createdAt": "created", "id": "uuid",
                         "updatedAt": ""}):
            self.behave({"rename_fields": mapping})
            for query, old in zip(queries, before):
                got = self.json_call("GET", query)
                if query.startswith("/v2/"):
                    self.assertEqual(got["metadata"], old["metadata"])
                    got, old = got["results"], old["results"]
                self.assert_same(got, [renamed(o, mapping) for o in old])
                for obj in got:
                    self.assertNotIn("createdAt", obj)
                    self.assertNotIn("updatedAt" if "id" in mapping
                                     else "name", obj)
        self.assertIn("created", obj)
        self.assertIn("uuid", obj)

    def test_switch_control_and_validation(self):
        """GET shows the switch; a new mapping replaces the old one; bad
        values get 400; {}, null, DELETE and reset turn it off."""
        self.assertEqual(self.behave({"rename_fields": self.RENAME,
                                      "cap_limit": 3}),
                         {"rename_fields": self.RENAME, "cap_limit": 3})
        self.assertEqual(self.json_call("GET", "/__mock/behaviour"),
                         {"rename_fields": self.RENAME, "cap_limit": 3})
        for value in (5, [], ["orgId"], "orgId", True, False,
                      {"orgId": 5}, {"orgId": None}, {"orgId": ["x"]},
                      {"orgId": "organizationId", "": "x"}, {"": ""}):
            self.assert_error("POST", "/__mock/behaviour", 400,
                              self.MESSAGE, {"rename_fields": value})
        self.assertEqual(self.json_call("GET", "/__mock/behaviour"),
                         {"rename_fields": self.RENAME, "cap_limit": 3})
        other = {"name": "label", "status": ""}
        self.assertEqual(self.behave({"rename_fields": other}),
                         {"rename_fields": other, "cap_limit": 3})
        got = self.json_call("GET", "/phone-number?limit=1")[0]
        self.assertIn("orgId", got)
        self.assertNotIn("status", got)
        self.assertEqual(self.behave({"rename_fields": {}}), {"cap_limit": 3})
        self.behave({"rename_fields": self.RENAME})
        self.assertEqual(self.behave({"rename_fields": None}),
                         {"cap_limit": 3})
        self.behave({"rename_fields": self.RENAME})
        self.assertEqual(self.json_call("DELETE", "/__mock/behaviour"), {})
        self.assertIn("orgId", self.json_call("GET", "/phone-number?limit=1")[0])
        self.behave({"rename_fields": self.RENAME})
        self.reset()
        self.assertEqual(self.json_call("GET", "/__mock/behaviour"), {})
        self.assertIn("orgId", self.json_call("GET", "/phone-number?limit=1")[0])
        self.assertEqual(self.log()[-1]["status"], 200)

    def test_off_restores_and_no_stale_cache(self):
        """Switching on and off takes effect at once, also for pages the
        mock has cached and for their gzip bodies; off again, every answer
        is byte for byte as before."""
        conn = self.connect()
        gz = {"Accept-Encoding": "gzip"}
        everything = self.dump()
        path = "/phone-number/" + everything[3]["id"]
        queries = ("/phone-number?limit=1000", "/v2/phone-number?limit=50"
                   "&page=2&sortOrder=ASC", path)
        before = [self.call("GET", q)[2] for q in queries]
        before_gz = [self.raw(conn, "GET", q, headers=gz)[1] for q in queries]
        self.assertEqual(gzip.decompress(before_gz[0]), before[0])
        for mapping in (self.RENAME, {"orgId": "org", "number": ""}):
            self.behave({"rename_fields": mapping})
            for query, old in zip(queries, before):
                old = json.loads(old)
                want = ([renamed(o, mapping) for o in old]
                        if type(old) is list else
                        dict(old, results=[renamed(o, mapping)
                                           for o in old["results"]])
                        if "results" in old else renamed(old, mapping))
                plain = self.call("GET", query)[2]
                self.assert_same(json.loads(plain), want)
                resp, packed = self.raw(conn, "GET", query, headers=gz)
                self.assertEqual(resp.status, 200)
                if resp.getheader("Content-Encoding") == "gzip":
                    packed = gzip.decompress(packed)
                else:
                    self.assertEqual(query, path)
                self.assertEqual(packed, plain)
        self.json_call("DELETE", "/__mock/behaviour")
        self.assertEqual([self.call("GET", q)[2] for q in queries], before)
        self.assertEqual([self.raw(conn, "GET", q, headers=gz)[1]
                          for q in queries], before_gz)
        self.assertEqual(sha256(self.dump_raw()), BASELINE_DUMP_SHA256)

    def test_swap_clash_and_legacy(self):
        """Renames apply at once (a swap works); a renamed field replaces
        one that keeps its name; legacy fields are renamed too."""
        obj = next(o for o in self.dump() if "name" in o)
        path = "/phone-number/" + obj["id"]
        keys = list(obj)
        self.assertLess(keys.index("orgId"), keys.index("name"))
        self.behave({"rename_fields": {"id": "orgId", "orgId": "id"}})
        got = self.json_call("GET", path)
        swap = {"id": "orgId", "orgId": "id"}
        self.assertEqual(list(got), [swap.get(k, k) for k in keys])
        self.assertEqual((got["id"], got["orgId"]), (obj["orgId"], obj["id"]))
        # orgId renamed to name: it takes the place of orgId, name goes.
        self.behave({"rename_fields": {"orgId": "name"}})
        got = self.json_call("GET", path)
        want = [("name", obj["orgId"]) if k == "orgId" else (k, obj[k])
                for k in keys if k != "name"]
        self.assertEqual(list(got.items()), want)
        self.behave({"legacy_secrets": True,
                     "rename_fields": {"serverUrlSecret": "",
                                       "serverUrl": "url"}})
        got = self.json_call("GET", path)
        self.assertEqual(list(got)[-1], "url")
        self.assertNotIn("serverUrlSecret", got)
        self.assertIn("serverUrlSecret",
                      self.json_call("GET", "/__mock/numbers/" + obj["id"]))


class BlackHoleTest(MockTestCase):
    """--blackhole-port-file: a port that accepts and never answers."""

    @classmethod
    def setUpClass(cls):
        """Start a mock with the black hole listener on."""
        cls.mock = MockProcess("--count", str(COUNT), "--seed", str(SEED),
                               blackhole=True)
        cls.addClassCleanup(cls.mock.stop)
        cls.base = cls.mock.url

    def hole(self, port=None):
        """A client socket connected to the black hole (auto-closed)."""
        sock = socket.create_connection(
            ("127.0.0.1", port or self.mock.blackhole_port), timeout=5)
        self.addCleanup(sock.close)
        return sock

    def wait_accepted(self, count, base=None):
        """Wait until the black hole has accepted `count` connections."""
        deadline = time.monotonic() + 5
        while True:
            got = json.loads(request(base or self.base, "GET",
                                     "/__mock/stats")[2])
            if got["blackhole_connections"] == count or \
                    time.monotonic() > deadline:
                self.assertEqual(got["blackhole_connections"], count)
                return
            time.sleep(0.02)

    def test_port_and_stats(self):
        """The port file, the stats fields and the mockctl commands."""
        port = self.mock.blackhole_port
        self.assertNotEqual(port, self.mock.port)
        self.assertEqual(self.stats(), {
            "requests": 0, "connections": 1, "numbers": COUNT,
            "blackhole_connections": 0, "blackhole_port": port,
            "inflight": 0, "max_inflight": 0})
        self.assertEqual(self.mockctl("blackhole-port"), (0, "%d\n" % port,
                                                          ""))
        self.hole()
        self.hole()
        self.wait_accepted(2)
        rc, text, err = self.mockctl("stats")
        self.assertEqual((rc, err), (0, ""))
        self.assertRegex(text, r"^requests=0 connections=\d+ numbers=300 "
                         r"blackhole=2\n$")
        self.reset()
        self.assertEqual(self.stats()["blackhole_connections"], 0)
        self.assertEqual(self.stats()["blackhole_port"], port)

    def test_never_answers(self):
        """Nothing comes back, whatever the client sends; the API still
        works meanwhile."""
        plain = self.hole()
        plain.sendall(b"GET /phone-number HTTP/1.1\r\nHost: x\r\n\r\n")
        tls = self.hole()
        tls.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"
                    + b"\x00" * 64)
        silent = self.hole()
        self.wait_accepted(3)
        start = time.monotonic()
        for sock in (plain, tls, silent):
            sock.settimeout(0.2)
            with self.assertRaises(socket.timeout):
                sock.recv(1)
        self.assertGreaterEqual(time.monotonic() - start, 0.55)
        self.assertEqual(self.call("GET", "/phone-number?limit=1")[0], 200)
        self.assertEqual(len(self.log()), 1)

    def assert_closed(self, sock):
        """The other end closed: end of stream, or a reset when it closed
        with input it never read."""
        sock.settimeout(5)
        try:
            self.assertEqual(sock.recv(1), b"")
        except ConnectionResetError:
            pass

    def test_closed_when_peer_closes(self):
        """When the client ends its side, the black hole closes too."""
        for data in (b"", b"hello"):
            sock = self.hole()
            if data:
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            self.assert_closed(sock)
        other = self.hole()
        self.wait_accepted(3)
        other.settimeout(0.1)
        with self.assertRaises(socket.timeout):
            other.recv(1)

    def test_signals_close_everything(self):
        """SIGTERM and SIGINT stop the mock promptly with connections open."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            mock = MockProcess("--count", "5", blackhole=True)
            self.addCleanup(mock.stop)
            socks = [self.hole(mock.blackhole_port) for _ in range(3)]
            self.wait_accepted(3, mock.url)
            start = time.monotonic()
            mock.proc.send_signal(signum)
            self.assertEqual(mock.proc.wait(5), 0)
            self.assertLess(time.monotonic() - start, 2)
            for sock in socks:
                self.assert_closed(sock)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", mock.blackhole_port),
                                         timeout=2).close()
            self.assertEqual(mock.error_text(), "")

    def test_off_by_default(self):
        """Without the option: no port, no connections, "none"."""
        mock = MockProcess("--count", "5")
        self.addCleanup(mock.stop)
        got = json.loads(request(mock.url, "GET", "/__mock/stats")[2])
        self.assertEqual((got["blackhole_connections"], got["blackhole_port"]),
                         (0, None))
        self.assertEqual(self.mockctl("blackhole-port", base=mock.url),
                         (0, "none\n", ""))
        self.assertEqual(self.mockctl("stats", base=mock.url),
                         (0, "requests=0 connections=3 numbers=5 "
                          "blackhole=0\n", ""))


class ConcurrencyTest(MockTestCase):
    """Many keep-alive clients listing, creating, patching and deleting."""

    THREADS = 20
    STEPS = 30

    def client(self, index, results):
        """One client's 30 requests on one connection; records what it did.

        Steps cycle through: gzip v1 list, v2 page, create, patch, get and
        (in every other cycle) delete of the number just created."""
        conn = http.client.HTTPConnection("127.0.0.1", self.mock.port,
                                          timeout=30)
        done = {"kept": {}, "deleted": [], "answers": 0}
        try:
            current = None
            for step in range(self.STEPS):
                op = step % 6
                name = "T%02d-%02d" % (index, step)
                headers = {}
                if op == 0:
                    method, path, body, want = ("GET", "/phone-number?limit=20",
                                                None, 200)
                    headers["Accept-Encoding"] = "gzip"
                elif op == 1:
                    method, path, body, want = (
                        "GET", "/v2/phone-number?limit=3&page=%d" % (step % 4 + 1),
                        None, 200)
                elif op == 2:
                    method, path, body, want = ("POST", "/phone-number",
                                                {"provider": "vapi",
                                                 "name": name}, 201)
                elif op == 3:
                    method, path, body, want = ("PATCH", "/phone-number/"
                                                + current["id"],
                                                {"name": name}, 200)
                elif op == 4:
                    method, path, body, want = ("GET", "/phone-number/"
                                                + current["id"], None, 200)
                elif step // 6 % 2 == 0:
                    method, path, body, want = ("DELETE", "/phone-number/"
                                                + current["id"], None, 200)
                else:
                    method, path, body, want = ("GET", "/phone-number?limit=0",
                                                None, 200)
                resp, data = self.raw(conn, method, path, body, headers)
                if resp.status != want:
                    raise AssertionError("%s %s: %d %r" % (
                        method, path, resp.status, data[:200]))
                if resp.getheader("Content-Type") != JSON_CT or \
                        resp.getheader("Connection") != "keep-alive" or \
                        int(resp.getheader("Content-Length")) != len(data):
                    raise AssertionError("bad headers: %r" % resp.getheaders())
                if resp.getheader("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                value = json.loads(data)
                if op == 0 and (len(value) != 20 or
                                any("id" not in o for o in value)):
                    raise AssertionError("bad v1 list")
                if op == 1 and (len(value["results"]) != 3 or
                                value["metadata"]["itemsPerPage"] != 3):
                    raise AssertionError("bad v2 page")
                if op == 2:
                    current = value
                    done["kept"][value["id"]] = name
                elif op in (3, 4):
                    if value["id"] != current["id"] or \
                            value["name"] != "T%02d-%02d" % (index, step - op + 3):
                        raise AssertionError("wrong number: %r" % value)
                    done["kept"][value["id"]] = value["name"]
                elif method == "DELETE":
                    if value["id"] != current["id"]:
                        raise AssertionError("deleted the wrong number")
                    del done["kept"][value["id"]]
                    done["deleted"].append(value["id"])
                done["answers"] += 1
        except Exception as exc:   # reported by the main thread
            done["error"] = "client %d: %r" % (index, exc)
        finally:
            conn.close()
        results[index] = done

    def test_concurrent_clients(self):
        """20 clients x 30 mixed requests under a latency fault: every
        answer is well-formed and the final state adds up."""
        self.fault({"kind": "latency", "ms": 10, "times": 0})
        results = [None] * self.THREADS
        threads = [threading.Thread(target=self.client, args=(i, results))
                   for i in range(self.THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual([r.get("error") for r in results],
                         [None] * self.THREADS)
        self.assertEqual([r["answers"] for r in results],
                         [self.STEPS] * self.THREADS)
        total = self.THREADS * self.STEPS
        kept = {}
        deleted = []
        for r in results:
            kept.update(r["kept"])
            deleted += r["deleted"]
        self.assertEqual((len(kept), len(deleted)),
                         (self.THREADS * 2, self.THREADS * 3))
        everything = self.dump()
        self.assertEqual(len(everything), COUNT + len(kept))
        self.assertEqual(self.stats()["numbers"], COUNT + len(kept))
        by_id = {o["id"]: o for o in everything}
        self.assertEqual(len(by_id), len(everything))
        self.assertEqual({i: by_id[i]["name"] for i in kept}, kept)
        self.assertFalse(set(deleted) & set(by_id))
        entries = self.log()
        self.assertEqual([e["seq"] for e in entries],
                         list(range(1, total + 1)))
        self.assertEqual({e["fault"] for e in entries}, {"latency"})
        self.assertTrue(all(e["status"] in (200, 201) for e in entries))
        per_conn = {}
        for e in entries:
            per_conn.setdefault(e["conn"], []).append(e["method"])
        self.assertEqual(len(per_conn), self.THREADS)
        self.assertEqual(sorted(len(v) for v in per_conn.values()),
                         [self.STEPS] * self.THREADS)
        self.assertEqual(self.json_call("GET", "/__mock/faults")[0]["seen"],
                         total)
        self.assertEqual(self.json_call("GET", "/phone-number?limit=1000"),
                         everything[:1000])


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
# difftest.py - differential query tester for vapi_fdw.
#
# It generates a deterministic (by --seed) stream of SQL queries over the
# foreign tables of vapi_fdw, runs each one twice - once over the foreign
# table and once, textually the same, over a local heap copy of that table
# made at the start - and compares the answers.  Pushdown must never change
# an answer, so any difference is a bug.
#
# Setup (schemas difftest, difftest_p97 and difftest_p2 and their servers,
# dropped and recreated at the start, dropped at the end unless --keep):
#   - the mock is reset to --count numbers (2500) of data seed 1;
#   - server difftest_srv (default page size) and difftest_srv97 (page_size
#     97, so that a scan goes through many pages), a user mapping on each,
#     IMPORT FOREIGN SCHEMA into difftest and difftest_p97;
#   - difftest.pn_typed: other column types (text id, varchar(40),
#     timestamptz(0), timestamptz(3), timestamp, date, a dotted key);
#   - difftest_p97.pn_odd: columns whose names say something else than
#     their key (created_at reads updatedAt, name reads provider, id reads
#     assistantId, the real id is pid, updated_at is text);
#   - difftest_p2.phone_numbers on a page_size 2 server (runs of equal
#     createdAt longer than a page), only queried with narrow time ranges;
#   - difftest.pn_ci: ids and names in case- and accent-insensitive ICU
#     collations;
#   - a local copy of each foreign table (CREATE TABLE AS), checked to hold
#     exactly the mock's numbers, and three CRM tables (crm_small, crm,
#     crm_big) with real ids (some twice, some in upper case), unknown
#     UUIDs, non-UUID text and NULLs.
#
# The query grammar covers: time predicates on every column that reads
# createdAt/updatedAt (= < <= > >= <> BETWEEN [SYMMETRIC] IN, IS [NOT] NULL,
# operands either way round) with values taken exactly from the data, the
# same nudged by 1 us, 500 us, 999 us, 1 ms, 0.5 s or 1 s, random instants
# inside and outside the data, infinities, far years, NULL, timestamp and
# date literals (also DST gaps and overlaps), stable expressions, InitPlans
# and parameters of prepared statements (generic and custom plans); ids
# (=, <>, IN lists with duplicates, NULLs, unknown, upper-case and non-UUID
# values, = ANY of arrays and array parameters, IS NULL); name / number /
# sip_uri with =, LIKE, ILIKE, NOT LIKE, ESCAPE, patterns from real values
# in mixed case with % _ and escapes; provider and status; AND / OR / NOT;
# ORDER BY (none, the time columns both ways with NULLS FIRST/LAST, with id,
# name) with LIMIT / OFFSET / WITH TIES (and LIMIT $1); select lists *, some
# columns, count(*), GROUP BY, min/max, DISTINCT, a window function; joins
# with the CRM tables (inner, left, IN, EXISTS, NOT EXISTS, LATERAL, a
# self-join), sometimes with hash joins disabled to force parameterized
# scans; per-row subqueries, EXISTS, UNION, CTEs, a LIMIT inside a
# subquery, a set-returning function under LIMIT.  Three in ten of the
# single-table queries use only predicates, orders and limits that are all
# pushed (so that LIMIT pushdown and keyset paging are exercised), and most
# queries draw their values from one "anchor" number so that conjunctions
# still match rows.  Each query runs in a batch-wide TimeZone (UTC,
# America/New_York, Asia/Kolkata, Pacific/Chatham) and DateStyle; both
# sides run in one transaction, so now() is the same for both.
#
# Comparison: the rows (as PostgreSQL's text output) must be equal as
# multisets; in order too when ORDER BY is a total order.  With a partial
# order (ORDER BY created_at alone, name, ...) the ORDER BY values must come
# in the same sequence, and the rows must be equal except inside the tie
# groups cut by LIMIT/OFFSET, where any rows of the full answer with that
# key will do.  Without ORDER BY, a LIMIT may pick any rows of the full
# answer.  An error on one side only is a mismatch; the same SQLSTATE on
# both sides is not.
#
# --faults: a slice of the queries (the middle tenth) runs with mock fault
# rules that must not change any answer: 503 and 429 answers with
# Retry-After 0, a little latency, and now and then a cut connection.
# --churn: every 50th query is a full or time-range scan of the page_size 97
# table during which the mock creates and deletes numbers (newest, oldest,
# middle) between list requests; then every number that existed for the
# whole scan and matches must come exactly once, with no duplicates and no
# row that never existed.  The mock is reset (same data) afterwards.
#
# Usage (PGHOST/PGPORT/PGUSER from the environment, the mock from
# VAPI_MOCK_URL and VAPI_MOCK_KEY; the extension must be installed):
#   /usr/bin/python3 test/difftest.py [--seed 1] [--queries 3000]
#       [--dbname contrib_regression] [--faults] [--churn] [--keep]
#   /usr/bin/python3 test/difftest.py --list [--queries N]   # print, no run
#   /usr/bin/python3 test/difftest.py --only K [--faults] [--churn]
#       (reproduces query K of a run with the same --seed and --queries)
#   --verbose prints every query with its row counts and time.
#
# It prints one line per mismatch (the first 20 in full), the elapsed time
# and finally "difftest: N passed, M failed"; the exit status is 0 only when
# nothing failed.  Python 3 standard library plus psycopg2.

import argparse
import collections
import datetime
import json
import os
import random
import signal
import sys
import time
import unicodedata
import urllib.error
import urllib.request
import zoneinfo

try:
    import psycopg2
    import psycopg2.extensions
except ImportError:                     # pragma: no cover
    sys.stderr.write("difftest: psycopg2 is missing (Debian package "
                     "python3-psycopg2; run with /usr/bin/python3)\n")
    sys.exit(2)

MOCK_COUNT = 2500
MOCK_SEED = 1
TIMEZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham")
DATESTYLES = ("ISO, MDY",) * 5 + ("SQL, DMY", "Postgres, MDY", "German, DMY")
TZ_BATCH = 40                           # queries per TimeZone batch
CHURN_EVERY = 50                        # every n-th query is a churn scan
CHURN_PHASE = 23
MAX_PRINTED = 20
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
UNKNOWN_IDS = ("00000000-0000-4000-8000-00000000dead",
               "5f0c1b9e-8d2a-4c3b-9e7f-0123456789ab")
NON_UUIDS = ("x", "", "../v2/phone-number?limit=1", "not-a-uuid",
             "00000000-0000-4000-8000-00000000dea", "%2e%2e", "12345")
PROVIDER_VALUES = ("byo-phone-number", "twilio", "vonage", "vapi", "telnyx",
                   "plivo", "Twilio", "")
STATUS_VALUES = ("active", "activating", "blocked", "Active", "gone")
LIMITS = (0, 1, 2, 3, 5, 10, 50, 96, 97, 98, 100, 193, 194, 500, 999, 1000,
          1001, 1500, 2499, 2500, 3000)
OFFSETS = (0, 1, 2, 5, 50, 96, 97, 100, 999, 1000, 2400, 2499, 2500, 4000)
# wall-clock times around DST changes inside the data (2024-01..04)
DST_WALL = ("2024-03-10 02:00:00", "2024-03-10 02:30:00", "2024-03-10 03:00:00",
            "2024-03-10 01:59:59.999", "2024-04-07 02:45:00",
            "2024-04-07 03:15:00", "2024-04-07 03:44:59.9995",
            "2024-04-07 03:45:00", "2024-04-07 02:44:59.999")
EXTREME_TSTZ = ("infinity", "-infinity", "0001-01-01 00:00:00+00",
                "4713-01-01 00:00:00+00 BC", "1969-12-31 23:59:59.9995+00",
                "1970-01-01 00:00:00+00", "9999-12-31 23:59:59.999999+00",
                "10000-01-01 00:00:00+00", "294276-12-31 23:59:59+00",
                "2024-01-01 00:00:00+14", "1900-06-01 12:00:00+00")
SPECIAL_WORDS = ("now", "today", "yesterday", "tomorrow", "epoch",
                 "infinity", "-infinity")
NUDGES_US = (1, -1, 500, -500, 999, -999, 1000, -1000, 1001, -1001,
             500000, -500000, 499999, -499999, 1000000, -1000000)
OFFSET_ZONES = ("+00", "Z", "+05:30", "-04", "+12:45", "-09:30", "+14",
                "-12", "+00:00:01")

# placeholders replaced when a query is rendered for one side
PH_TABLE = "\x01T\x01"                  # the table under test
PH_LOCAL = "\x01L\x01"                  # always the local copy of it
PH_CRM = "\x01C\x01"                    # difftest.crm
PH_CRM_BIG = "\x01B\x01"                # difftest.crm_big
PH_CRM_SMALL = "\x01S\x01"              # difftest.crm_small


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------

class Col:
    """One column of a tested table: SQL name, kind and JSON key.

    Kinds: uuid / textid (ids), tstz / ts / date / tstext (time values),
    str (LIKE-able text), cistr (text in a case- or accent-insensitive
    collation: no LIKE), enum (provider, status), other (select only)."""

    def __init__(self, name, kind, key, sqltype=None, collate=None):
        """Remember the column's name, kind, JSON key, SQL type and
        collation (None for the default)."""
        self.name = name
        self.kind = kind
        self.key = key
        self.sqltype = sqltype
        self.collate = collate

    def crm_column(self):
        """The CRM column that holds values of this id column."""
        if self.kind == "uuid":
            return "vapi_id"
        if self.collate:
            return "vapi_text COLLATE " + self.collate
        return "vapi_text"


class Table:
    """A foreign table under test and its local copy."""

    def __init__(self, tag, foreign, local, unique, join_col, cols, weight,
                 api_order, narrow=False):
        """Describe a table: names, unique column, join column, columns.

        api_order lists the time columns an ORDER BY may use; a narrow
        table (page_size 2) is only queried with a narrow created_at
        range, so that its scans stay short."""
        self.tag = tag
        self.foreign = foreign
        self.local = local
        self.unique = unique
        self.join_col = join_col
        self.cols = cols
        self.weight = weight
        self.api_order = api_order
        self.narrow = narrow

    def col(self, name):
        """The Col of that name."""
        for c in self.cols:
            if c.name == name:
                return c
        raise KeyError(name)

    def of_kind(self, *kinds):
        """Columns of the given kinds."""
        return [c for c in self.cols if c.kind in kinds]


def imported_cols():
    """Columns of an imported phone_numbers table that the grammar uses."""
    return [Col("id", "uuid", "id", "uuid"), Col("name", "str", "name"),
            Col("number", "str", "number"), Col("sip_uri", "str", "sipUri"),
            Col("provider", "enum", "provider"),
            Col("status", "enum", "status"),
            Col("created_at", "tstz", "createdAt", "timestamptz"),
            Col("updated_at", "tstz", "updatedAt", "timestamptz"),
            Col("server_url", "str", "server.url"),
            Col("assistant_id", "other", "assistantId"),
            Col("sms_enabled", "other", "smsEnabled"),
            Col("server", "other", "server"),
            Col("attrs", "other", None)]


TABLES = [
    Table("pn", "difftest.phone_numbers", "difftest.local_pn", "id", "id",
          imported_cols(), 30, ["created_at", "updated_at"]),
    Table("pn97", "difftest_p97.phone_numbers", "difftest.local_pn97", "id",
          "id", imported_cols(), 25, ["created_at", "updated_at"]),
    Table("pn2", "difftest_p2.phone_numbers", "difftest.local_pn2", "id",
          "id", imported_cols(), 10, ["created_at", "updated_at"],
          narrow=True),
    Table("typed", "difftest.pn_typed", "difftest.local_typed", "id", "id",
          [Col("id", "textid", "id", "text"),
           Col("name", "str", "name"), Col("number", "str", "number"),
           Col("provider", "enum", "provider"),
           Col("sip_uri", "str", "sipUri"),
           Col("created_at", "tstz", "createdAt", "timestamptz(0)"),
           Col("updated_at", "tstz", "updatedAt", "timestamptz(3)"),
           Col("created_ts", "ts", "createdAt", "timestamp"),
           Col("created_date", "date", "createdAt", "date"),
           Col("server_url", "str", "server.url")],
          30, ["created_at", "updated_at", "created_ts", "created_date"]),
    Table("ci", "difftest.pn_ci", "difftest.local_ci", "id", "id",
          [Col("id", "textid", "id", "text", "difftest.ci"),
           Col("name", "cistr", "name"), Col("number", "str", "number"),
           Col("sip_uri", "cistr", "sipUri"),
           Col("provider", "enum", "provider"),
           Col("status", "enum", "status"),
           Col("created_at", "tstz", "createdAt", "timestamptz"),
           Col("updated_at", "tstz", "updatedAt", "timestamptz")],
          8, ["created_at", "updated_at"]),
    Table("odd", "difftest_p97.pn_odd", "difftest.local_odd", "pid", "pid",
          [Col("pid", "uuid", "id", "uuid"),
           Col("id", "textid", "assistantId", "text"),
           Col("made", "tstz", "createdAt", "timestamptz"),
           Col("created_at", "tstz", "updatedAt", "timestamptz"),
           Col("updated_at", "tstext", "updatedAt", "text"),
           Col("name", "str", "provider"), Col("label", "str", "name"),
           Col("number", "str", "number"), Col("sip_uri", "str", "sipUri"),
           Col("status", "enum", "status")],
          15, ["made", "created_at"]),
]
TABLE_BY_TAG = {t.tag: t for t in TABLES}

SETUP_SQL = """
DROP SCHEMA IF EXISTS difftest CASCADE;
DROP SCHEMA IF EXISTS difftest_p97 CASCADE;
DROP SERVER IF EXISTS difftest_srv CASCADE;
DROP SERVER IF EXISTS difftest_srv97 CASCADE;
DROP SCHEMA IF EXISTS difftest_p2 CASCADE;
DROP SERVER IF EXISTS difftest_srv2 CASCADE;
CREATE EXTENSION IF NOT EXISTS vapi_fdw;
CREATE SCHEMA difftest;
CREATE SCHEMA difftest_p97;
CREATE SERVER difftest_srv FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url {url});
CREATE SERVER difftest_srv97 FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url {url}, page_size '97');
CREATE SERVER difftest_srv2 FOREIGN DATA WRAPPER vapi_fdw
  OPTIONS (url {url}, page_size '2');
CREATE SCHEMA difftest_p2;
CREATE USER MAPPING FOR CURRENT_USER SERVER difftest_srv2 OPTIONS (api_key {key});
IMPORT FOREIGN SCHEMA vapi FROM SERVER difftest_srv2 INTO difftest_p2;
CREATE USER MAPPING FOR CURRENT_USER SERVER difftest_srv OPTIONS (api_key {key});
CREATE USER MAPPING FOR CURRENT_USER SERVER difftest_srv97 OPTIONS (api_key {key});
IMPORT FOREIGN SCHEMA vapi FROM SERVER difftest_srv INTO difftest;
IMPORT FOREIGN SCHEMA vapi FROM SERVER difftest_srv97 INTO difftest_p97;
CREATE FOREIGN TABLE difftest.pn_typed (
  id text, name varchar(40), number text, provider text, sip_uri text,
  created_at timestamptz(0), updated_at timestamptz(3),
  created_ts timestamp OPTIONS (key 'createdAt'),
  created_date date OPTIONS (key 'createdAt'),
  server_url text OPTIONS (key 'server.url')) SERVER difftest_srv;
CREATE FOREIGN TABLE difftest_p97.pn_odd (
  number text, id text OPTIONS (key 'assistantId'),
  pid uuid OPTIONS (key 'id'),
  made timestamptz OPTIONS (key 'createdAt'),
  created_at timestamptz OPTIONS (key 'updatedAt'),
  updated_at text OPTIONS (key 'updatedAt'),
  name text OPTIONS (key 'provider'),
  label text OPTIONS (key 'name'),
  status text, sip_uri text) SERVER difftest_srv97;
CREATE COLLATION difftest.ci (provider = icu, locale = 'und-u-ks-level2',
  deterministic = false);
CREATE COLLATION difftest.ai (provider = icu, locale = 'und-u-ks-level1',
  deterministic = false);
CREATE FOREIGN TABLE difftest.pn_ci (
  id text COLLATE difftest.ci, name text COLLATE difftest.ai, number text,
  sip_uri text COLLATE difftest.ci, provider text, status text,
  created_at timestamptz, updated_at timestamptz) SERVER difftest_srv;
"""

TEARDOWN_SQL = """
DROP SCHEMA IF EXISTS difftest CASCADE;
DROP SCHEMA IF EXISTS difftest_p97 CASCADE;
DROP SERVER IF EXISTS difftest_srv CASCADE;
DROP SERVER IF EXISTS difftest_srv97 CASCADE;
DROP SCHEMA IF EXISTS difftest_p2 CASCADE;
DROP SERVER IF EXISTS difftest_srv2 CASCADE;
"""


# --------------------------------------------------------------------------
# The mock
# --------------------------------------------------------------------------

class MockError(Exception):
    """The mock's control API failed."""


class Mock:
    """Client of the mock's control API (/__mock/...)."""

    def __init__(self, url):
        """Remember the mock's base URL."""
        self.url = url.rstrip("/")

    def call(self, method, path, payload=None):
        """Send one control request and return the decoded JSON answer."""
        data = None
        headers = {"Accept": "application/json"}
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data,
                                     headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise MockError("%s %s: %s" % (method, path, exc))
        return json.loads(body.decode("utf-8")) if body else None

    def reset(self, count, seed):
        """Regenerate the data set; clears log, faults and mutations."""
        self.call("POST", "/__mock/reset", {"count": count, "seed": seed})

    def numbers(self):
        """Every stored number (newest first)."""
        return self.call("GET", "/__mock/numbers")

    def clear_log(self):
        """Empty the request log (it would grow for the whole run)."""
        self.call("DELETE", "/__mock/requests")

    def add_faults(self, rules):
        """Install fault rules."""
        self.call("POST", "/__mock/faults", rules)

    def clear_faults(self):
        """Remove every fault rule."""
        self.call("DELETE", "/__mock/faults")

    def add_mutations(self, rules):
        """Install mutation rules."""
        self.call("POST", "/__mock/mutations", rules)

    def mutations(self):
        """The ids the mutation rules created and deleted."""
        return self.call("GET", "/__mock/mutations")

    def clear_mutations(self):
        """Remove every mutation rule."""
        self.call("DELETE", "/__mock/mutations")


# --------------------------------------------------------------------------
# Time helpers
# --------------------------------------------------------------------------

def iso_to_us(text):
    """Microseconds since the epoch of a mock timestamp ('...Z')."""
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (dt - EPOCH) // datetime.timedelta(microseconds=1)


def us_to_dt(us, tz=datetime.timezone.utc):
    """An aware datetime in tz for microseconds since the epoch."""
    return (EPOCH + datetime.timedelta(microseconds=us)).astimezone(tz)


def fmt_frac(dt):
    """'.ffffff' without trailing zeros, or '' for whole seconds."""
    if not dt.microsecond:
        return ""
    return ("." + "%06d" % dt.microsecond).rstrip("0")


def fmt_wall(dt):
    """'YYYY-MM-DD HH:MM:SS[.f]' of a datetime's wall clock."""
    return "%04d-%02d-%02d %02d:%02d:%02d%s" % (
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second,
        fmt_frac(dt))


def fmt_instant(us, rng):
    """A timestamptz literal text for an instant, in a random offset."""
    zone = rng.choice(OFFSET_ZONES)
    if zone == "Z":
        dt = us_to_dt(us)
        return fmt_wall(dt).replace(" ", "T") + "Z"
    sign = -1 if zone[0] == "-" else 1
    parts = [int(p) for p in zone[1:].split(":")] + [0, 0]
    delta = datetime.timedelta(hours=parts[0], minutes=parts[1],
                               seconds=parts[2]) * sign
    dt = us_to_dt(us, datetime.timezone(delta))
    return fmt_wall(dt) + zone


def fold_accents(text):
    """The text without combining accents (Zürich -> Zurich)."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(ch))


def sql_str(text):
    """A standard SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# --------------------------------------------------------------------------
# The data the grammar draws values from
# --------------------------------------------------------------------------

class Data:
    """Value pools taken from the mock's numbers."""

    def __init__(self, numbers):
        """Index the numbers by JSON key path."""
        self.numbers = numbers
        self.ids = [n["id"] for n in numbers]
        self.pools = {}
        self.has_null = {}
        self.times = {}
        for key in ("id", "name", "number", "sipUri", "provider", "status",
                    "assistantId", "server.url", "createdAt", "updatedAt"):
            vals = [self.get(n, key) for n in numbers]
            self.pools[key] = sorted({v for v in vals if isinstance(v, str)})
            self.has_null[key] = any(v is None for v in vals)
        for key in ("createdAt", "updatedAt"):
            self.times[key] = sorted(iso_to_us(v) for v in self.pools[key])
        counts = collections.Counter(iso_to_us(n["createdAt"])
                                     for n in numbers)
        self.tied = sorted(us for us, k in counts.items() if k > 1)
        self.lo_us = self.times["createdAt"][0]
        self.hi_us = max(self.times["updatedAt"][-1],
                         self.times["createdAt"][-1])

    @staticmethod
    def get(obj, path):
        """Follow a dotted key path into an object (None when absent)."""
        for part in path.split("."):
            if not isinstance(obj, dict):
                return None
            obj = obj.get(part)
        return obj

    def pick(self, rng, key):
        """A random non-null value of a key."""
        pool = self.pools[key]
        return rng.choice(pool) if pool else ""


# --------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------

class Query:
    """One generated test case.

    sql holds placeholders for the table names; params is a list of
    (type, [value per execution]); order is 'none', 'total' or 'partial'
    (then nkeys trailing columns are the ORDER BY keys); full_sql is the
    same query without LIMIT/OFFSET (for the lenient checks)."""

    def __init__(self, index, table, tz, datestyle):
        """An empty query for one table, TimeZone and DateStyle."""
        self.index = index
        self.table = table
        self.tz = tz
        self.datestyle = datestyle
        self.sql = ""
        self.full_sql = None
        self.params = []
        self.nexec = 1
        self.plan_mode = None
        self.settings = []
        self.order = "none"
        self.nkeys = 0
        self.has_limit = False
        self.has_offset = False
        self.churn = None
        self.faults = None
        self.summary = ""

    def render(self, text, local):
        """The SQL text for one side: foreign table or local copy."""
        return (text.replace(PH_TABLE, self.table.local if local
                             else self.table.foreign)
                .replace(PH_LOCAL, self.table.local)
                .replace(PH_CRM, "difftest.crm")
                .replace(PH_CRM_BIG, "difftest.crm_big")
                .replace(PH_CRM_SMALL, "difftest.crm_small"))

    def describe(self):
        """One-line description: number, settings, foreign SQL, params."""
        parts = ["q%d" % self.index, "table=%s" % self.table.tag,
                 "tz=%s" % self.tz]
        if self.datestyle != DATESTYLES[0]:
            parts.append("datestyle=%s" % self.datestyle.replace(" ", ""))
        if self.plan_mode:
            parts.append("plan=%s" % self.plan_mode)
        for s in self.settings:
            parts.append(s.replace(" ", ""))
        if self.faults:
            parts.append("faults")
        if self.churn:
            parts.append("churn=%s" % json.dumps(self.churn,
                                                 separators=(",", ":")))
        text = " ".join(parts) + ": " + " ".join(
            self.render(self.sql, False).split())
        if self.params:
            text += "  params(%s)=%s" % (
                ", ".join(t for t, _ in self.params),
                " / ".join("(" + ", ".join(v[i] for _, v in self.params) + ")"
                           for i in range(self.nexec)))
        return text


class Gen:
    """Grammar state while one query is generated."""

    def __init__(self, rng, data, query, prepared):
        """Start generating a query; prepared allows $n parameters."""
        self.rng = rng
        self.data = data
        self.q = query
        self.t = query.table
        self.prepared = prepared
        self.prefix = ""
        # clean: only predicates, orders and limits that are all pushed
        self.clean = False
        # most queries aim at one number, so that conjuncts can all be true
        self.anchor = (rng.choice(data.numbers) if rng.random() < 0.7
                       else None)

    # -- helpers -----------------------------------------------------------

    def c(self, col):
        """A column reference (with the current alias prefix)."""
        return self.prefix + col.name

    def chance(self, p):
        """True with probability p."""
        return self.rng.random() < p

    def param(self, sqltype, make):
        """A $n parameter whose value per execution comes from make()."""
        values = [make() for _ in range(self.q.nexec)]
        self.q.params.append((sqltype, values))
        return "$%d" % len(self.q.params)

    def weighted(self, choices):
        """Pick a key of a {key: weight} dict."""
        keys = list(choices)
        return self.rng.choices(keys, [choices[k] for k in keys])[0]

    # -- time values ---------------------------------------------------------

    def pick(self, key):
        """A value of a key: mostly the anchor's, else any in the data."""
        if self.anchor is not None and self.chance(0.7):
            value = Data.get(self.anchor, key)
            if isinstance(value, str):
                return value
        return self.data.pick(self.rng, key)

    def data_us(self, col):
        """A time value of the data (us) for a column's key."""
        key = col.key if col.key in self.data.times else "createdAt"
        return iso_to_us(self.pick(key))

    def tstz_literal(self, us):
        """A timestamptz constant in one of several spellings."""
        text = sql_str(fmt_instant(us, self.rng))
        r = self.rng.random()
        if r < 0.45:
            return text
        if r < 0.75:
            return text + "::timestamptz"
        if r < 0.95:
            return "timestamptz " + text
        return text + "::timestamptz(%d)" % self.rng.choice((0, 3))

    def wall_literal(self, us, tzname, as_date=False):
        """A timestamp (or date) literal of an instant's wall clock in tz."""
        dt = us_to_dt(us, zoneinfo.ZoneInfo(tzname))
        if as_date:
            return "date '%04d-%02d-%02d'" % (dt.year, dt.month, dt.day)
        text = fmt_wall(dt)
        return (("timestamp " + sql_str(text)) if self.chance(0.6)
                else sql_str(text) + "::timestamp")

    def stable_expr(self, col):
        """A stable (not immutable) expression of a time type."""
        us = self.data_us(col)
        r = self.rng.randrange(8)
        if r == 0:
            return "now() - interval '%d days'" % self.rng.choice(
                (self.rng.randint(940, 1060), self.rng.randint(0, 3000)))
        if r == 1:
            return "timestamptz %s + interval '%d hours'" % (
                sql_str(fmt_instant(us, self.rng)), self.rng.randint(-48, 48))
        if r == 2:
            dt = us_to_dt(us)
            return "'%04d-%02d-%02d'::date + %d" % (
                dt.year, dt.month, dt.day, self.rng.randint(-3, 3))
        if r == 3:
            return "current_date - %d" % self.rng.randint(900, 1100)
        if r == 4:
            dt = us_to_dt(us, zoneinfo.ZoneInfo(self.q.tz))
            return "make_timestamptz(%d, %d, %d, %d, %d, %d.%06d)" % (
                dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second,
                dt.microsecond)
        if r == 5:
            return "date_trunc('%s', timestamptz %s)" % (
                self.rng.choice(("hour", "day", "second")),
                sql_str(fmt_instant(us, self.rng)))
        if r == 6:
            return "(%s AT TIME ZONE 'Asia/Tokyo')" % self.wall_literal(
                us, "Asia/Tokyo")
        return "transaction_timestamp() - interval '%d days %d seconds'" % (
            self.rng.randint(950, 1050), self.rng.randint(0, 86399))

    def initplan(self, col):
        """A scalar subquery over the local copy or the CRM table."""
        r = self.rng.randrange(4)
        name = col.name
        if r == 0:
            return "(SELECT %s(%s) FROM %s)" % (
                self.rng.choice(("max", "min")), name, PH_LOCAL)
        if r == 1:
            return "(SELECT %s FROM %s ORDER BY %s %s LIMIT 1 OFFSET %d)" % (
                name, PH_LOCAL, name, self.rng.choice(("ASC", "DESC")),
                self.rng.randint(0, 2600))
        if r == 2 and col.kind in ("tstz", "ts", "date"):
            return "(SELECT max(%s) - interval '%d hours' FROM %s)" % (
                name, self.rng.randint(0, 2000), PH_LOCAL)
        return ("(SELECT since FROM %s WHERE since IS NOT NULL "
                "ORDER BY account LIMIT 1 OFFSET %d)"
                % (PH_CRM, self.rng.randint(0, 12)))

    def const_time(self, col, kind=None):
        """A constant time value suitable for a column (SQL text)."""
        rng = self.rng
        if col.kind == "tstext":
            return self.text_time(col)
        kinds = {"exact": 22, "nudge": 22, "in": 8, "out": 3, "extreme": 4,
                 "null": 2, "ts": 9, "date": 7, "word": 2, "dst": 3}
        if col.kind in ("ts", "date"):
            kinds.update(ts=20, date=15, exact=15, dst=4)
        kind = kind or self.weighted(kinds)
        if kind == "exact":
            if col.kind == "tstz":
                key = col.key if col.key in self.data.pools else "createdAt"
                text = self.pick(key)
                return rng.choice((sql_str(text), sql_str(text) +
                                   "::timestamptz",
                                   self.tstz_literal(iso_to_us(text))))
            return self.wall_literal(self.data_us(col), "UTC",
                                     col.kind == "date" and rng.random() < .6)
        if kind == "nudge":
            us = self.data_us(col) + rng.choice(NUDGES_US)
            if col.kind == "tstz":
                return self.tstz_literal(us)
            return self.wall_literal(us, "UTC")
        if kind in ("in", "out"):
            span = self.data.hi_us - self.data.lo_us
            if kind == "in":
                us = self.data.lo_us + rng.randrange(span)
            else:
                us = rng.choice((self.data.lo_us - rng.randrange(span * 20),
                                 self.data.hi_us + rng.randrange(span * 20)))
            return (self.tstz_literal(us) if col.kind == "tstz"
                    else self.wall_literal(us, "UTC"))
        if kind == "extreme":
            text = rng.choice(EXTREME_TSTZ)
            if col.kind == "date" and rng.random() < 0.5:
                return "date " + sql_str(rng.choice(
                    ("infinity", "-infinity", "0001-01-01", "5874897-12-31",
                     "10000-01-01", "4713-01-01 BC")))
            return (sql_str(text) + "::timestamptz" if rng.random() < 0.8
                    else sql_str(text))
        if kind == "null":
            return rng.choice(("NULL", "NULL::timestamptz", "NULL::date",
                               "NULL::timestamp"))
        if kind == "ts":
            return self.wall_literal(self.data_us(col) + rng.choice(
                (0, 0, 0, 1, -1, 1000, -1000)), self.q.tz)
        if kind == "date":
            us = self.data_us(col)
            return self.wall_literal(us, self.q.tz, as_date=True)
        if kind == "word":
            word = rng.choice(SPECIAL_WORDS)
            return sql_str(word) + rng.choice(("::timestamptz", "::date",
                                               "::timestamp", ""))
        # dst: a wall-clock time in a gap or an overlap
        text = rng.choice(DST_WALL)
        return rng.choice(("timestamp " + sql_str(text),
                           sql_str(text) + "::timestamp",
                           "date " + sql_str(text[:10])))

    def text_time(self, col):
        """A text value for a text column holding ISO timestamps."""
        text = self.pick(col.key)
        r = self.rng.randrange(5)
        if r == 1:
            text = text[:10]
        elif r == 2:
            text = text.replace("T", " ")
        elif r == 3:
            text = text[:-1] + "0"
        return sql_str(text)

    def time_value(self, col):
        """Any time value: constant, stable, InitPlan or parameter."""
        r = self.rng.random()
        if col.kind == "tstext":
            if self.prepared and r < 0.4:
                return self.param("text", lambda: self.text_time(col))
            return self.text_time(col)
        if self.prepared and r < 0.55:
            ptype = self.rng.choice(("timestamptz", "timestamptz",
                                     "timestamp", "date"))
            if col.kind in ("ts", "date") and self.chance(0.5):
                ptype = col.sqltype
            kind = {"timestamp": "ts", "date": "date"}.get(ptype)
            return self.param(ptype, lambda: self.const_time(col, kind)
                              if kind else self.const_time(col))
        if r < 0.80:
            return self.const_time(col)
        if r < 0.92:
            return self.stable_expr(col)
        return self.initplan(col)

    # -- atoms -------------------------------------------------------------

    def time_atom(self, col=None):
        """A predicate on a time column."""
        rng = self.rng
        if self.clean:
            col = col or rng.choice(self.t.of_kind("tstz"))
            ops = {"=": 4, "<": 10, "<=": 10, ">": 10, ">=": 10,
                   "between": 8, "range": 20}
        else:
            col = col or rng.choice(self.t.of_kind("tstz", "ts", "date",
                                                   "tstext"))
            ops = {"=": 6, "<": 10, "<=": 10, ">": 10, ">=": 10, "<>": 3,
                   "between": 10, "range": 14, "is null": 2, "in": 3,
                   "not between": 2, "distinct": 1}
        c = self.c(col)
        op = self.weighted(ops)
        if op == "is null":
            return "%s IS %sNULL" % (c, rng.choice(("", "NOT ")))
        if op == "distinct":
            return "%s IS %sDISTINCT FROM %s" % (
                c, rng.choice(("", "NOT ")), self.time_value(col))
        if op == "range":
            return self.time_range(col)
        if op in ("between", "not between"):
            return "%s %s %s%s AND %s" % (
                c, op.upper(), rng.choice(("", "", "SYMMETRIC ")),
                self.time_value(col), self.time_value(col))
        if op == "in":
            vals = [self.time_value(col) for _ in range(rng.randint(1, 4))]
            return "%s %sIN (%s)" % (c, rng.choice(("", "", "NOT ")),
                                      ", ".join(vals))
        v = self.time_value(col)
        if self.chance(0.25):
            flip = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=",
                    "<>": "<>"}
            return "%s %s %s" % (v, flip[op], c)
        return "%s %s %s" % (c, op, v)

    def time_range(self, col, narrow=False):
        """Two bounds near each other in the data: a selective range.

        A narrow range spans at most 20 distinct instants, often around
        numbers that share their createdAt."""
        rng = self.rng
        key = col.key if col.key in self.data.times else "createdAt"
        times = self.data.times[key]
        if narrow and rng.random() < 0.5:
            i = times.index(rng.choice(self.data.tied))
        else:
            i = times.index(self.data_us(col))
        i = max(0, i - rng.choice((0, 0, 1, 5, 50) if not narrow
                                  else (0, 0, 1, 2)))
        j = min(len(times) - 1, i + rng.choice(
            (0, 1, 3, 20, 150, 900) if not narrow else (0, 1, 2, 3, 5, 20)))
        lo, hi = times[i], times[j]
        lo += rng.choice((0, 0, 0) + NUDGES_US)
        hi += rng.choice((0, 0, 0) + NUDGES_US)
        c = self.c(col)

        def bound(us):
            """One bound as a value for this column."""
            if col.kind == "tstext":
                return sql_str(fmt_wall(us_to_dt(us)).replace(" ", "T") + "Z")
            if col.kind == "tstz" and self.chance(0.7):
                lit = self.tstz_literal(us)
            else:
                lit = self.wall_literal(us, rng.choice(("UTC", self.q.tz)))
            if self.prepared and self.chance(0.4):
                typ = "timestamptz" if col.kind in ("tstz",) else "timestamp"
                return self.param(typ, lambda: lit)
            return lit
        return "%s %s %s AND %s %s %s" % (
            c, rng.choice((">", ">=")), bound(lo),
            c, rng.choice(("<", "<=")), bound(hi))

    def id_value(self, col):
        """An id literal: existing, unknown, upper-case, odd or NULL."""
        rng = self.rng
        r = self.weighted({"exist": 60, "unknown": 8, "upper": 10,
                           "odd": 6, "braces": 4, "nohyphen": 3,
                           "null": 4, "space": 2})
        v = self.pick(col.key)
        if r == "unknown":
            v = rng.choice(UNKNOWN_IDS)
        elif r == "upper":
            v = v.upper() if rng.random() < 0.7 else "".join(
                ch.upper() if rng.random() < 0.5 else ch for ch in v)
        elif r == "odd":
            v = rng.choice(NON_UUIDS)
            if col.kind == "uuid":
                v = rng.choice(UNKNOWN_IDS)   # a bad uuid is just an error
        elif r == "braces":
            v = "{" + v + "}"
        elif r == "nohyphen":
            v = v.replace("-", "")
        elif r == "null":
            return "NULL"
        elif r == "space":
            v = (" " + v) if col.kind == "textid" else v
        return sql_str(v)

    def id_atom(self, col=None):
        """A predicate on an id column."""
        rng = self.rng
        col = col or rng.choice(self.t.of_kind("uuid", "textid"))
        c = self.c(col)
        typ = "uuid" if col.kind == "uuid" else "text"
        if self.clean:
            form = self.weighted({"=": 40, "in": 30, "any": 10, "param": 10,
                                  "anyparam": 10})
        else:
            form = self.weighted({"=": 35, "in": 25, "any": 10, "<>": 3,
                                  "null": 4, "initplan": 4, "param": 10,
                                  "anyparam": 9, "not in": 2})
        if form == "=" or (form in ("param", "anyparam")
                           and not self.prepared):
            v = self.id_value(col)
            if col.kind == "textid" and self.chance(0.15):
                v += " COLLATE difftest.ci"
            if self.chance(0.2):
                return "%s = %s" % (v, c)
            return "%s = %s" % (c, v)
        if form == "<>":
            return "%s <> %s" % (c, self.id_value(col))
        if form == "null":
            return "%s IS %sNULL" % (c, rng.choice(("", "NOT ")))
        if form in ("in", "not in"):
            n = rng.randint(1, 6) if rng.random() > 0.03 else 120
            vals = [self.id_value(col) for _ in range(n)]
            vals += rng.sample(vals, rng.randint(0, len(vals)))   # repeats
            if col.kind == "textid" and self.chance(0.4):
                vals.append(sql_str(self.pick(col.key).upper()))
            rng.shuffle(vals)
            if col.kind == "textid" and self.chance(0.15):
                vals[0] += " COLLATE difftest.ci"
            return "%s %s (%s)" % (c, form.upper(), ", ".join(vals))
        if form == "any":
            vals = [self.id_value(col) for _ in range(rng.randint(0, 5))]
            vals += rng.sample(vals, rng.randint(0, len(vals)))
            if rng.random() < 0.5:
                return "%s = ANY(ARRAY[%s]::%s[])" % (c, ", ".join(vals), typ)
            elems = ['"%s"' % v[1:-1].replace("''", "'").replace('"', '')
                     for v in vals if v != "NULL"]
            return "%s = ANY(%s::%s[])" % (
                c, sql_str("{" + ",".join(elems) + "}"), typ)
        if form == "initplan":
            crm = col.crm_column()
            return "%s = (SELECT %s FROM %s ORDER BY account LIMIT 1 " \
                   "OFFSET %d)" % (c, crm, PH_CRM, rng.randint(0, 30))
        if form == "param":
            return "%s = %s" % (c, self.param(typ, lambda: self.id_value(col)))

        def array():
            """An array parameter value (sometimes 2-D, sometimes NULL)."""
            r = rng.random()
            if r < 0.05:
                return "NULL"
            vals = [self.id_value(col) for _ in range(rng.randint(0, 5))]
            vals += rng.sample(vals, rng.randint(0, len(vals)))
            if r < 0.15 and vals:
                return "ARRAY[ARRAY[%s], ARRAY[%s]]::%s[]" % (
                    ", ".join(vals), ", ".join(reversed(vals)), typ)
            return "ARRAY[%s]::%s[]" % (", ".join(vals), typ)
        return "%s = ANY(%s)" % (c, self.param(typ + "[]", array))

    def like_pattern(self, value, fold):
        """A LIKE pattern built from a real value (may or may not match)."""
        rng = self.rng
        if not value:
            value = "Line"
        start = rng.randrange(len(value))
        end = rng.randint(start + 1, len(value))
        if rng.random() < 0.3:
            start = 0
        if rng.random() < 0.3:
            end = len(value)
        frag = value[start:end]
        if fold or rng.random() < 0.1:
            frag = "".join(ch.upper() if rng.random() < 0.5 else ch.lower()
                           for ch in frag)
        out = []
        for ch in frag:
            if ch in "%_\\":
                out.append("\\" + ch)
            elif rng.random() < 0.06:
                out.append("_")
            elif rng.random() < 0.03:
                out.append("\\" + ch)        # an escaped ordinary character
            elif rng.random() < 0.03:
                out.append("%")
            else:
                out.append(ch)
        pat = "".join(out)
        if start > 0 or rng.random() < 0.3:
            pat = "%" + pat
        if end < len(value) or rng.random() < 0.3:
            pat += rng.choice(("%", "%", "_%", "%_"))
        return pat

    def str_atom(self, col=None):
        """A predicate on a text column (name, number, sip_uri ...)."""
        rng = self.rng
        col = col or rng.choice(self.t.of_kind("str"))
        c = self.c(col)
        value = self.pick(col.key)
        form = self.weighted({"=": 14, "like": 24, "ilike": 20,
                              "not like": 6, "not ilike": 3, "escape": 4,
                              "<>": 2, "null": 3, "in": 4, "long": 3,
                              "special": 5, "param": 6, "regex": 2})
        if form == "=":
            if rng.random() < 0.2:
                value = rng.choice((value.upper(), value + " ", value[:-1],
                                    "", fold_accents(value).lower()))
            return "%s = %s%s" % (c, sql_str(value), rng.choice(
                ("",) * 6 + (" COLLATE difftest.ai", " COLLATE \"C\"")))
        if form in ("like", "ilike", "not like", "not ilike"):
            pat = self.like_pattern(value, "ilike" in form)
            return "%s %s %s" % (c, form.upper(), sql_str(pat))
        if form == "escape":
            pat = self.like_pattern(value, False).replace("\\", "!")
            esc = "!"
            if rng.random() < 0.3:
                pat, esc = self.like_pattern(value, False).replace(
                    "\\", ""), ""
            return "%s %s %s ESCAPE %s" % (
                c, rng.choice(("LIKE", "ILIKE")), sql_str(pat), sql_str(esc))
        if form == "<>":
            return "%s <> %s" % (c, sql_str(value))
        if form == "null":
            return "%s IS %sNULL" % (c, rng.choice(("", "NOT ")))
        if form == "in":
            vals = [sql_str(self.pick(col.key))
                    for _ in range(rng.randint(1, 4))]
            return "%s IN (%s)" % (c, ", ".join(vals))
        if form == "long":
            n = rng.choice((99, 100, 101, 150, 300))
            body = (value * (n // max(1, len(value)) + 1))[:n]
            op = rng.choice(("=", "LIKE", "ILIKE"))
            if op != "=":
                body = "%" + body + "%"
            return "%s %s %s" % (c, op, sql_str(body))
        if form == "special":
            pat = rng.choice(("%", "%%", "_%", "", "%\\%%", "%\\_%",
                              "Front \"Desk\" \\\\ Annex", "%\\\\%",
                              "%ü%", "%Ü%", "%ZÜRICH%", "%📞%", "%γραφείο%",
                              "%ΓΡΑΦΕΊΟ%", "%東京%", "+1%", "%@sip.vapi.ai",
                              "SIP:LINE1%", "% %", "%'%", "%\"%", "%&%",
                              "%#%", "%?%", "%/%", "%+%", "Line 0000_"))
            return "%s %s %s" % (c, rng.choice(("LIKE", "ILIKE", "=")),
                                 sql_str(pat))
        if form == "regex":
            word = "".join(ch for ch in value if ch.isalnum())[:4]
            return "%s %s %s" % (c, rng.choice(("~", "~*")),
                                 sql_str(word or "Line"))
        if not self.prepared:
            return "%s LIKE %s" % (c, sql_str(self.like_pattern(value,
                                                                 False)))
        return "%s %s %s" % (
            c, rng.choice(("=", "LIKE", "ILIKE")),
            self.param("text", lambda: sql_str(self.like_pattern(
                self.pick(col.key), False))))

    def ci_atom(self):
        """A predicate on a column with a nondeterministic collation."""
        rng = self.rng
        cols = self.t.of_kind("cistr")
        if not cols:
            return self.str_atom()
        col = rng.choice(cols)
        c = self.c(col)

        def variant():
            """A value in another case or without accents."""
            v = self.pick(col.key)
            r = rng.randrange(4)
            if r == 1:
                v = v.upper()
            elif r == 2:
                v = fold_accents(v)
            elif r == 3:
                v = fold_accents(v).lower() + rng.choice(("", " ", "x"))
            return sql_str(v)
        r = rng.randrange(6)
        if r < 3:
            return "%s = %s" % (c, variant())
        if r == 3:
            return "%s IN (%s)" % (c, ", ".join(variant() for _ in
                                                range(rng.randint(1, 4))))
        if r == 4:
            return "%s <> %s" % (c, variant())
        return "%s = %s COLLATE \"C\"" % (c, variant())

    def enum_atom(self):
        """A predicate on provider or status."""
        rng = self.rng
        cols = self.t.of_kind("enum")
        col = rng.choice(cols)
        c = self.c(col)
        values = STATUS_VALUES if col.name == "status" else PROVIDER_VALUES
        r = rng.randrange(5)
        if r == 0:
            return "%s IS %sNULL" % (c, rng.choice(("", "NOT ")))
        if r == 1:
            return "%s IN (%s)" % (c, ", ".join(
                sql_str(v) for v in rng.sample(values, 2)))
        if r == 2:
            return "%s <> %s" % (c, sql_str(rng.choice(values)))
        return "%s = %s" % (c, sql_str(rng.choice(values)))

    def other_atom(self):
        """Predicates that are never pushed: functions, column pairs."""
        rng = self.rng
        times = self.t.of_kind("tstz", "ts", "date")
        a, b = rng.choice(times), rng.choice(times)
        r = rng.randrange(6)
        if r == 0:
            return "%s %s %s" % (self.c(a), rng.choice(("<", ">", "=")),
                                 self.c(b))
        if r == 1:
            return "date_trunc('day', %s) = date_trunc('day', CAST(%s AS %s))" \
                % (self.c(a), self.const_time(a, "exact"),
                   {"tstz": "timestamptz"}.get(a.kind, a.sqltype))
        if r == 2:
            return "extract(%s from %s) < %d" % (
                "dow" if a.kind == "date" else "hour", self.c(a),
                rng.randint(0, 24))
        if r == 3:
            return "%s::date = %s" % (self.c(a), self.const_time(a, "date"))
        if r == 4:
            return "%s + interval '%d minutes' > %s" % (
                self.c(a), rng.randint(-600, 600), self.const_time(a))
        return "(%s IS NULL) = %s" % (self.c(rng.choice(self.t.cols)),
                                      rng.choice(("true", "false")))

    def atom(self):
        """Any single predicate, weighted towards pushable ones."""
        if self.clean:
            return self.time_atom() if self.chance(0.8) else self.id_atom()
        kind = self.weighted({"time": 45, "id": 14, "str": 20, "enum": 8,
                              "other": 5,
                              "ci": 10 if self.t.of_kind("cistr") else 0})
        if kind == "ci":
            return self.ci_atom()
        if kind == "time":
            return self.time_atom()
        if kind == "id":
            return self.id_atom()
        if kind == "str":
            return self.str_atom()
        if kind == "enum":
            return self.enum_atom()
        return self.other_atom()

    def bool_expr(self, depth=0):
        """A predicate tree of AND / OR / NOT over atoms."""
        r = self.rng.random()
        if depth >= 2 or r < 0.6 or self.clean:
            return self.atom()
        if r < 0.8:
            return "(%s AND %s)" % (self.bool_expr(depth + 1),
                                    self.bool_expr(depth + 1))
        if r < 0.95:
            return "(%s OR %s)" % (self.bool_expr(depth + 1),
                                   self.bool_expr(depth + 1))
        return "NOT (%s)" % self.bool_expr(depth + 1)

    def where(self):
        """A WHERE clause body (maybe empty): a few conjuncts (on a narrow
        table always a narrow created_at range first)."""
        n = self.rng.choices((0, 1, 2, 3), (12, 50, 28, 10))[0]
        conj = [self.bool_expr() for _ in range(n)]
        if self.t.narrow:
            conj.insert(0, self.time_range(self.t.col("created_at"), True))
        return " AND ".join(conj)

    # -- select list, order, limit ------------------------------------------

    def columns(self):
        """A few column names (always at least one)."""
        cols = self.rng.sample(self.t.cols, self.rng.randint(1, 4))
        if self.chance(0.5) and self.t.col(self.t.unique) not in cols:
            cols.insert(0, self.t.col(self.t.unique))
        return [self.c(c) for c in cols]

    def order_by(self):
        """ORDER BY items and how total they are: (items, kind, keys)."""
        rng = self.rng
        t = self.t
        kind = self.weighted({"none": 33, "api": 32, "api_total": 14,
                              "other": 10, "other_total": 6, "two": 5}
                             if not self.clean else {"none": 35, "api": 65})
        if kind == "none":
            return [], "none", []
        direction = rng.choice(("", " ASC", " DESC", " DESC", " ASC NULLS FIRST",
                                " DESC NULLS LAST", " NULLS FIRST"))
        if self.clean:
            col = t.api_order[0]
        elif kind in ("api", "api_total"):
            col = rng.choice(t.api_order[:1] * 3 + t.api_order)
        else:
            col = rng.choice(t.of_kind("str", "cistr", "enum", "tstz", "ts",
                                       "date"))
        items = [self.c(t.col(col) if isinstance(col, str) else col)
                 + direction]
        keys = [items[0].split(" ")[0]]
        if kind == "two":
            second = rng.choice(t.of_kind("str", "cistr", "enum", "tstz"))
            items.append(self.c(second) + rng.choice(("", " DESC")))
            keys.append(self.c(second))
        if kind.endswith("total"):
            items.append(self.c(t.col(t.unique))
                         + rng.choice(("", " DESC")))
            return items, "total", keys
        return items, "partial", keys

    def limit_clause(self, ordered):
        """LIMIT / OFFSET / FETCH text and (has_limit, has_offset)."""
        rng = self.rng
        r = rng.random()
        if self.clean:
            r = 0.53 + r * 0.47 if r > 0.2 else 0.0
        if r < 0.45:
            return "", False, False
        text, has_limit, has_offset = "", False, False
        if ordered and r < 0.52:
            return ("FETCH FIRST %d ROWS WITH TIES" % rng.choice(LIMITS[1:]),
                    False, False)
        if r < 0.9:
            n = rng.choice(LIMITS)
            if self.prepared and self.chance(0.4):
                text = "LIMIT " + self.param("bigint", lambda: str(
                    rng.choice(LIMITS)))
            else:
                text = "LIMIT %s" % rng.choice((str(n),) * 8 + ("ALL",
                                                                 "NULL"))
            has_limit = "ALL" not in text and "NULL" not in text
        if r >= 0.7:
            m = rng.choice(OFFSETS)
            text += " OFFSET %d" % m
            has_offset = m > 0
        return text.strip(), has_limit, has_offset


# --------------------------------------------------------------------------
# Query shapes
# --------------------------------------------------------------------------

def single_table_query(g):
    """SELECT ... FROM the table [WHERE] [ORDER BY] [LIMIT] (or aggregates)."""
    q, rng = g.q, g.rng
    g.clean = g.chance(0.3)
    where = g.where()
    wtext = (" WHERE " + where) if where else ""
    shape = g.weighted({"rows": 55, "star": 13, "count": 9, "group": 8,
                        "minmax": 7, "distinct": 5, "window": 3}
                       if not g.clean else {"rows": 80, "star": 20})
    src = " FROM " + PH_TABLE
    if shape in ("rows", "star"):
        items, kind, keys = g.order_by()
        sel = "*" if shape == "star" else ", ".join(g.columns())
        sel += "".join(", %s AS _k%d" % (k, i + 1)
                       for i, k in enumerate(keys) if kind == "partial")
        order = (" ORDER BY " + ", ".join(items)) if items else ""
        lim, q.has_limit, q.has_offset = g.limit_clause(bool(items))
        q.order = kind
        q.nkeys = len(keys) if kind == "partial" else 0
        base = "SELECT " + sel + src + wtext + order
        q.sql = base + ((" " + lim) if lim else "")
        q.full_sql = base
        return
    if shape == "count":
        sel = rng.choice(("count(*)", "count(*), count(%s)" % g.c(
            rng.choice(g.t.cols)), "count(DISTINCT %s)" % g.c(
                g.t.col(g.t.unique))))
        q.sql = "SELECT " + sel + src + wtext
    elif shape == "group":
        col = g.c(rng.choice(g.t.of_kind("enum")))
        q.sql = "SELECT %s, count(*)%s%s GROUP BY %s" % (
            col, src, wtext, col)
        if g.chance(0.6):
            q.sql += " ORDER BY %s%s" % (col, rng.choice(("", " DESC")))
            q.order = "total"
    elif shape == "minmax":
        cols = g.t.of_kind("tstz", "ts", "date")
        q.sql = "SELECT %s%s%s" % (", ".join(
            "%s(%s)" % (rng.choice(("min", "max")), g.c(rng.choice(cols)))
            for _ in range(rng.randint(1, 3))), src, wtext)
    elif shape == "distinct":
        col = g.c(rng.choice(g.t.of_kind("enum")))
        q.sql = "SELECT DISTINCT %s%s%s" % (col, src, wtext)
        if g.chance(0.5):
            q.sql += " ORDER BY %s" % col
            q.order = "total"
    else:
        api = g.t.api_order[0]
        q.sql = ("SELECT %s, row_number() OVER (ORDER BY %s, %s)%s%s"
                 % (g.c(g.t.col(g.t.unique)), api, g.t.unique, src, wtext))
    q.full_sql = q.sql
    if g.chance(0.15):
        q.sql += " LIMIT %d" % rng.choice(LIMITS[1:])
        q.has_limit = True


def join_query(g):
    """A query joining the table with a CRM table (or itself)."""
    q, rng, t = g.q, g.rng, g.t
    # a small outer side makes the planner use parameterized scans
    crm = rng.choices((PH_CRM_SMALL, PH_CRM, PH_CRM_BIG), (45, 40, 15))[0]
    jc = t.col(t.join_col)
    ccol = jc.crm_column()
    kind = g.weighted({"inner": 25, "left": 15, "in": 15, "exists": 12,
                       "not exists": 5, "lateral": 12, "self": 8,
                       "any": 8})
    g.prefix = "a." if kind == "self" else "p."
    where = g.where() if g.chance(0.6) else ""
    pcols = ", ".join(g.columns())
    order = ""
    if kind in ("inner", "left"):
        on = "p.%s = c.%s" % (jc.name, ccol)
        if kind == "left" and where:
            on += " AND " + where
            where = ""
        q.sql = "SELECT c.account, %s FROM %s c %s JOIN %s p ON %s" % (
            pcols, crm, "LEFT" if kind == "left" else "", PH_TABLE, on)
        order = " ORDER BY c.account"
    elif kind in ("in", "exists", "not exists", "any"):
        if kind == "in":
            cond = "p.%s IN (SELECT %s FROM %s)" % (jc.name, ccol, crm)
        elif kind == "any":
            cond = "p.%s = ANY(ARRAY(SELECT %s FROM %s))" % (jc.name, ccol,
                                                             crm)
        else:
            cond = "%s (SELECT 1 FROM %s c WHERE c.%s = p.%s)" % (
                kind.upper(), crm, ccol, jc.name)
        where = cond + ((" AND " + where) if where else "")
        q.sql = "SELECT %s FROM %s p" % (pcols, PH_TABLE)
        order = " ORDER BY p.%s" % t.unique
    elif kind == "lateral":
        api = t.api_order[0]
        inner_where = ("p.%s > c.since" % api if t.col(api).kind == "tstz"
                       else "p.%s = c.%s" % (jc.name, ccol))
        if where:
            inner_where += " AND " + where
            where = ""
        if g.chance(0.5):
            sub = ("SELECT p.%s FROM %s p WHERE %s ORDER BY p.%s LIMIT %d"
                   % (api, PH_TABLE, inner_where, api, rng.randint(1, 3)))
        else:
            sub = ("SELECT %s FROM %s p WHERE %s ORDER BY p.%s, p.%s "
                   "LIMIT %d" % (pcols, PH_TABLE, inner_where, api, t.unique,
                                 rng.randint(1, 3)))
        # a few outer rows only: each one rescans the foreign table
        q.sql = ("SELECT c.account, x.* FROM (SELECT * FROM %s ORDER BY "
                 "account LIMIT %d) c CROSS JOIN LATERAL (%s) x"
                 % (crm, rng.randint(2, 8), sub))
        order = ""
    else:
        g.prefix = "b."
        bwhere = g.where()
        q.sql = ("SELECT a.%s, b.%s FROM %s a JOIN %s b ON a.%s = b.%s"
                 % (t.unique, t.api_order[0], PH_TABLE, PH_TABLE, t.unique,
                    t.unique))
        where = " AND ".join(x for x in (where, bwhere) if x)
        order = " ORDER BY a.%s" % t.unique
    if where:
        q.sql += " WHERE " + where
    q.full_sql = q.sql
    if order and g.chance(0.4):
        # the CRM account is unique and each side has at most one match per
        # account or id, so these orders are total
        q.sql += order
        q.full_sql = q.sql
        q.order = "total"
    if g.chance(0.2):
        q.sql += " LIMIT %d" % rng.choice((1, 2, 5, 10, 50))
        q.has_limit = True
    if g.chance(0.5):
        q.settings.append("enable_hashjoin = off")
        if g.chance(0.5):
            q.settings.append("enable_mergejoin = off")


def nested_query(g):
    """Subqueries: per-row scalar subqueries and EXISTS over the foreign
    table (rescans with outer values), UNION, a LIMIT inside a subquery, a
    set-returning function with LIMIT, CTEs."""
    q, rng, t = g.q, g.rng, g.t
    api = t.api_order[0]
    uniq = t.unique
    jc = t.col(t.join_col)
    ccol = jc.crm_column()
    outer = "(SELECT * FROM %s ORDER BY account LIMIT %d) c" % (
        rng.choice((PH_CRM, PH_CRM_BIG)), rng.randint(2, 8))
    kind = g.weighted({"scalar": 14, "scalar_time": 12, "outer_exists": 12,
                       "union": 12, "sub_limit": 16, "srf": 8, "cte": 10,
                       "self_in": 12})
    g.prefix = "p." if kind not in ("union", "sub_limit", "srf") else ""
    where = g.where() if g.chance(0.6) else ""
    andw = (" AND " + where) if where else ""
    if kind == "scalar":
        q.sql = ("SELECT c.account, (SELECT p.%s FROM %s p WHERE p.%s = c.%s%s)"
                 " AS v FROM %s ORDER BY c.account"
                 % (rng.choice(t.cols).name, PH_TABLE, jc.name, ccol, andw,
                    outer))
        q.order = "total"
    elif kind == "scalar_time":
        if g.chance(0.5):
            sub = "SELECT %s(p.%s) FROM %s p WHERE p.%s %s c.since%s" % (
                rng.choice(("min", "max", "count")), api, PH_TABLE, api,
                rng.choice(("<", ">", "<=", ">=")), andw)
        else:
            sub = ("SELECT p.%s FROM %s p WHERE p.%s > c.since%s ORDER BY "
                   "p.%s%s LIMIT 1" % (api, PH_TABLE, api, andw, api,
                                       rng.choice(("", " DESC"))))
        q.sql = "SELECT c.account, (%s) AS v FROM %s ORDER BY c.account" % (
            sub, outer)
        q.order = "total"
    elif kind == "outer_exists":
        q.sql = ("SELECT c.account FROM %s WHERE %sEXISTS (SELECT 1 FROM %s p "
                 "WHERE p.%s %s c.since%s)" % (
                     outer, rng.choice(("", "NOT ")), PH_TABLE, api,
                     rng.choice(("<", ">")), andw))
    elif kind == "union":
        cols = ", ".join(g.columns())
        q.sql = "SELECT %s FROM %s%s UNION%s SELECT %s FROM %s WHERE %s" % (
            cols, PH_TABLE, (" WHERE " + where) if where else "",
            rng.choice((" ALL", "")), cols, PH_TABLE, g.bool_expr())
    elif kind == "sub_limit":
        n = rng.choice(LIMITS)
        off = (" OFFSET %d" % rng.choice(OFFSETS)) if g.chance(0.3) else ""
        q.sql = ("SELECT count(*), min(x), max(x) FROM (SELECT %s AS x FROM %s"
                 "%s ORDER BY %s%s LIMIT %d%s) s" % (
                     api, PH_TABLE, (" WHERE " + where) if where else "",
                     api, rng.choice(("", " DESC")), n, off))
    elif kind == "srf":
        col = rng.choice(t.of_kind("enum")).name
        val = sql_str(rng.choice(STATUS_VALUES if col == "status"
                                 else PROVIDER_VALUES))
        q.sql = ("SELECT %s, unnest(CASE WHEN %s = %s THEN ARRAY[1, 2] ELSE "
                 "ARRAY[]::int[] END) AS n FROM %s%s" % (
                     uniq, col, val, PH_TABLE,
                     (" WHERE " + where) if where else ""))
    elif kind == "cte":
        if g.chance(0.5):
            q.sql = ("WITH s AS MATERIALIZED (SELECT * FROM %s p%s) SELECT "
                     "count(*), count(DISTINCT %s), max(%s) FROM s" % (
                         PH_TABLE, (" WHERE " + where) if where else "",
                         uniq, api))
        else:
            q.sql = ("WITH s AS (SELECT p.%s, p.%s FROM %s p%s ORDER BY p.%s "
                     "DESC, p.%s LIMIT %d) SELECT s.%s, x.%s FROM s JOIN %s x "
                     "USING (%s)" % (uniq, api, PH_TABLE,
                                     (" WHERE " + where) if where else "",
                                     api, uniq, rng.choice(LIMITS[1:]),
                                     uniq, rng.choice(t.cols).name,
                                     PH_TABLE, uniq))
    else:
        g.prefix = "i."
        inner = "SELECT %s FROM %s i WHERE %s" % (
            uniq, PH_TABLE, g.time_range(t.col(api)))
        g.prefix = "p."
        if g.chance(0.5):
            inner += " ORDER BY i.%s DESC, i.%s LIMIT %d" % (
                api, uniq, rng.choice(LIMITS[1:]))
        q.sql = "SELECT %s FROM %s p WHERE p.%s IN (%s)%s" % (
            ", ".join(g.columns()), PH_TABLE, uniq, inner, andw)
    q.full_sql = q.sql
    if q.order == "none" and kind in ("union", "srf", "outer_exists") \
            and g.chance(0.3):
        q.sql += " LIMIT %d" % rng.choice((1, 2, 3, 5, 10, 97, 100))
        q.has_limit = True
    if g.chance(0.3):
        q.settings.append("enable_hashjoin = off")


def churn_query(g):
    """A scan of the page_size 97 table for a churn check (no LIMIT)."""
    q, rng = g.q, g.rng
    col = g.t.col("created_at")
    where = ""
    r = rng.random()
    if r < 0.4:
        where = " WHERE " + g.time_range(col)
    elif r < 0.6:
        where = " WHERE %s %s %s" % ("created_at", rng.choice(("<", ">=")),
                                     g.const_time(col, "exact"))
    order = rng.choice(("", "", " ORDER BY created_at",
                        " ORDER BY created_at DESC"))
    q.sql = ("SELECT id, name, created_at, extract(epoch FROM created_at) "
             "AS _e FROM " + PH_TABLE + where + order)
    q.full_sql = q.sql
    # without --churn it is compared like any other query
    q.order, q.nkeys = ("partial", 1) if order else ("none", 0)
    rules = []
    for _ in range(rng.choice((1, 1, 2))):
        rules.append({"before_list_request": rng.randint(2, 12),
                      "create": rng.randint(0, 6),
                      "delete": rng.randint(0, 6),
                      "at": rng.choice(("newest", "oldest", "middle"))})
    q.churn = rules


def fault_rules(rng):
    """Mock fault rules that must not change any answer."""
    # A Retry-After of 0 is treated like no header (libcurl reports both as
    # 0), so each fault costs a short back-off: a few per query at most.
    rules = [{"kind": "status", "status": 503, "retry_after": "0",
              "every": 4, "times": 2},
             {"kind": "status", "status": 429, "retry_after": "0",
              "every": 6, "times": 1}]
    r = rng.random()
    if r < 0.3:
        rules.insert(0, {"kind": "status", "status": rng.choice(
            (502, 503, 504, 429)), "retry_after": "0", "times": 1})
    elif r < 0.4:
        rules.insert(0, {"kind": "latency", "ms": 3, "every": 5, "times": 0})
    elif r < 0.45:
        rules.insert(0, {"kind": "cut", "times": 1,
                         "skip": rng.randint(0, 3)})
    return rules


def generate(seed, data, index, nqueries):
    """Generate query number `index` (independent of the others)."""
    brng = random.Random("%s:tz:%d" % (seed, index // TZ_BATCH))
    tz = brng.choice(TIMEZONES)
    datestyle = brng.choice(DATESTYLES)
    rng = random.Random("%s:q:%d" % (seed, index))
    if index % CHURN_EVERY == CHURN_PHASE:
        # churn scans go to the page_size 97 table
        q = Query(index, TABLE_BY_TAG["pn97"], tz, datestyle)
        churn_query(Gen(rng, data, q, False))
    else:
        table = rng.choices(TABLES, [t.weight for t in TABLES])[0]
        q = Query(index, table, tz, datestyle)
        prepared = rng.random() < 0.2
        if prepared:
            q.nexec = rng.choice((1, 2, 2, 3))
            q.plan_mode = rng.choice(("force_generic_plan",) * 3 +
                                     ("force_custom_plan", "auto"))
        g = Gen(rng, data, q, prepared)
        r = rng.random()
        if table.narrow:
            single_table_query(g)
        elif r < 0.12:
            join_query(g)
        elif r < 0.22:
            nested_query(g)
        else:
            single_table_query(g)
        if not q.params:
            q.plan_mode = None
            q.nexec = 1
    lo, hi = int(nqueries * 0.45), int(nqueries * 0.55)
    if lo <= index < hi:
        q.faults = fault_rules(random.Random("%s:f:%d" % (seed, index)))
    return q


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------

RAW_OIDS = (16, 20, 21, 23, 26, 114, 700, 701, 1082, 1083, 1114, 1184, 1186,
            1266, 1700, 2950, 3802)
RAW = psycopg2.extensions.new_type(RAW_OIDS, "RAW", lambda v, cur: v)
psycopg2.extensions.register_type(RAW)


class Lost(Exception):
    """The connection to the server was lost (a crash, a restart)."""

    def __str__(self):
        """The message on one line."""
        return " ".join(" ".join(str(a) for a in self.args).split())


class Outcome:
    """What one side of one execution gave: rows or an error."""

    def __init__(self, rows=None, state=None, message=None):
        """rows (list of tuples of text) or an SQLSTATE and message."""
        self.rows = rows
        self.state = state
        self.message = message

    def __repr__(self):
        """Short text for reports."""
        if self.rows is not None:
            return "%d rows" % len(self.rows)
        return "ERROR %s: %s" % (self.state, (self.message or "").strip()
                                 .splitlines()[0][:200])


class Runner:
    """The database connection and the execution of query pairs."""

    def __init__(self, dbname):
        """Connect."""
        self.dbname = dbname
        self.conn = None
        self.connect()

    def connect(self):
        """(Re)connect, waiting for a restarting server."""
        deadline = time.monotonic() + 60
        while True:
            try:
                self.conn = psycopg2.connect(dbname=self.dbname)
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("SET statement_timeout = '120s'; "
                        "SET client_min_messages = warning")

    def execute(self, sql):
        """Run statements in autocommit mode; returns the last rows."""
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else None

    def one_side(self, cur, q, local):
        """Run one side (all executions); a list of Outcomes."""
        name = "dt_l" if local else "dt_f"
        sql = q.render(q.sql, local)
        outs = []
        if q.params:
            cur.execute("SAVEPOINT s")
            try:
                cur.execute("PREPARE %s(%s) AS %s" % (
                    name, ", ".join(t for t, _ in q.params), sql))
            except psycopg2.Error as exc:
                self.check_lost(exc)
                cur.execute("ROLLBACK TO SAVEPOINT s")
                return [Outcome(state=exc.pgcode, message=str(exc))] * q.nexec
            for i in range(q.nexec):
                args = ", ".join(v[i] for _, v in q.params)
                outs.append(self.run_statement(
                    cur, "EXECUTE %s(%s)" % (name, args)))
            return outs
        return [self.run_statement(cur, sql)]

    def run_statement(self, cur, sql):
        """Run one statement under a savepoint; an Outcome."""
        cur.execute("SAVEPOINT s")
        try:
            cur.execute(sql)
            rows = cur.fetchall()
            cur.execute("RELEASE SAVEPOINT s")
            return Outcome(rows=rows)
        except psycopg2.Error as exc:
            self.check_lost(exc)
            cur.execute("ROLLBACK TO SAVEPOINT s")
            return Outcome(state=exc.pgcode, message=str(exc))

    def check_lost(self, exc):
        """Raise Lost when the error means the connection is gone."""
        if self.conn.closed or isinstance(exc, (psycopg2.InterfaceError,
                                                psycopg2.OperationalError)) \
                and exc.pgcode is None:
            raise Lost(str(exc).strip())

    def begin(self, cur, q):
        """Start the transaction of a pair and apply its settings."""
        cur.execute("BEGIN")
        sets = ["SET LOCAL TimeZone = %s" % sql_str(q.tz),
                "SET LOCAL DateStyle = %s" % sql_str(q.datestyle)]
        if q.plan_mode:
            sets.append("SET LOCAL plan_cache_mode = " + q.plan_mode)
        sets += ["SET LOCAL " + s for s in q.settings]
        cur.execute("; ".join(sets))

    def run_pair(self, q, sides=(False, True)):
        """Both sides of a query in one transaction: [foreign, local]."""
        try:
            with self.conn.cursor() as cur:
                self.begin(cur, q)
                result = [self.one_side(cur, q, local) for local in sides]
                cur.execute("ROLLBACK")
                if q.params:
                    cur.execute("DEALLOCATE ALL")
                return result
        except (psycopg2.InterfaceError, psycopg2.OperationalError) as exc:
            if self.conn.closed or getattr(exc, "pgcode", None) is None:
                raise Lost(str(exc).strip())
            raise

    def run_local(self, q, sql):
        """One extra statement over the local copy, same settings."""
        with self.conn.cursor() as cur:
            self.begin(cur, q)
            try:
                if q.params:
                    cur.execute("PREPARE dt_x(%s) AS %s" % (
                        ", ".join(t for t, _ in q.params),
                        q.render(sql, True)))
                    outs = []
                    for i in range(q.nexec):
                        cur.execute("EXECUTE dt_x(%s)" % ", ".join(
                            v[i] for _, v in q.params))
                        outs.append(cur.fetchall())
                    return outs
                cur.execute(q.render(sql, True))
                return [cur.fetchall()]
            finally:
                cur.execute("ROLLBACK")
                if q.params:
                    cur.execute("DEALLOCATE ALL")


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

def fmt_rows(rows, limit=3):
    """A few rows as short text."""
    out = []
    for r in rows[:limit]:
        text = "(" + ", ".join("NULL" if v is None else str(v) for v in r) + ")"
        out.append(text if len(text) < 240 else text[:237] + "...")
    if len(rows) > limit:
        out.append("... %d more" % (len(rows) - limit))
    return "[" + "; ".join(out) + "]"


def multiset_diff(a, b):
    """Rows of a not in b and of b not in a (with multiplicity)."""
    ca, cb = collections.Counter(a), collections.Counter(b)
    return list((ca - cb).elements()), list((cb - ca).elements())


def compare_rows(q, f, l, full):
    """None when the foreign rows f are a right answer, else a message.

    l is the local answer; full() gives the local answer without
    LIMIT/OFFSET (for the lenient checks of partial orders)."""
    if q.order == "total":
        if f == l:
            return None
        if collections.Counter(f) == collections.Counter(l):
            first = next(i for i, (a, b) in enumerate(zip(f, l)) if a != b)
            return "same rows, different order from row %d: foreign %s " \
                   "local %s" % (first, fmt_rows(f[first:], 2),
                                 fmt_rows(l[first:], 2))
        fo, lo = multiset_diff(f, l)
        return "foreign %d rows, local %d; only foreign %s; only local %s" % (
            len(f), len(l), fmt_rows(fo), fmt_rows(lo))
    if q.order == "partial":
        kf = [r[-q.nkeys:] for r in f]
        kl = [r[-q.nkeys:] for r in l]
        if kf != kl:
            i = next((i for i, (a, b) in enumerate(zip(kf, kl)) if a != b),
                     min(len(kf), len(kl)))
            return ("ORDER BY keys differ at row %d (foreign %d rows, local "
                    "%d): foreign %s local %s" % (
                        i, len(f), len(l), fmt_rows(kf[i:], 3),
                        fmt_rows(kl[i:], 3)))
    if collections.Counter(f) == collections.Counter(l):
        return None
    if not (q.has_limit or q.has_offset) or len(f) != len(l):
        fo, lo = multiset_diff(f, l)
        return "foreign %d rows, local %d; only foreign %s; only local %s" % (
            len(f), len(l), fmt_rows(fo), fmt_rows(lo))
    everything = full()
    if q.order == "partial":
        edge = set()
        if f:
            if q.has_limit:
                edge.add(f[-1][-q.nkeys:])
            if q.has_offset:
                edge.add(f[0][-q.nkeys:])
        core_f = [r for r in f if r[-q.nkeys:] not in edge]
        core_l = [r for r in l if r[-q.nkeys:] not in edge]
        fo, lo = multiset_diff(core_f, core_l)
        if fo or lo:
            return "rows outside the LIMIT tie groups differ: only foreign " \
                   "%s; only local %s" % (fmt_rows(fo), fmt_rows(lo))
        tie_f = [r for r in f if r[-q.nkeys:] in edge]
        extra, _ = multiset_diff(tie_f, everything)
        if extra:
            return "rows in a tie group that the full answer lacks: %s" % (
                fmt_rows(extra))
        return None
    extra, _ = multiset_diff(f, everything)
    if extra:
        return "LIMIT without ORDER BY returned rows that are not in the " \
               "full answer: %s" % fmt_rows(extra)
    return None


def compare_outcomes(q, runner, fouts, louts):
    """None when every execution agrees, else a message."""
    full_cache = {}

    def full(i):
        """Local answer without LIMIT/OFFSET for execution i."""
        if "rows" not in full_cache:
            full_cache["rows"] = runner.run_local(q, q.full_sql)
        return full_cache["rows"][i]
    q.summary = "/".join("%r|%r" % (fo, lo) for fo, lo in zip(fouts, louts))
    for i, (fo, lo) in enumerate(zip(fouts, louts)):
        tag = ("execution %d: " % (i + 1)) if q.nexec > 1 else ""
        if fo.rows is None or lo.rows is None:
            if fo.rows is None and lo.rows is None and fo.state == lo.state:
                continue
            return tag + "foreign %r, local %r" % (fo, lo)
        msg = compare_rows(q, fo.rows, lo.rows, lambda i=i: full(i))
        if msg:
            return tag + msg
    return None


# --------------------------------------------------------------------------
# Churn
# --------------------------------------------------------------------------

def check_churn(q, runner, mock, ctx):
    """Run a scan while the mock creates/deletes numbers; None if right."""
    mock.add_mutations(q.churn)
    try:
        fouts, louts = runner.run_pair(q)
    finally:
        muts = mock.mutations()
        ctx.restore_mock()
    fo, lo = fouts[0], louts[0]
    created, deleted = set(muts["created"]), set(muts["deleted"])
    q.summary = "%r|%r created=%d deleted=%d" % (fo, lo, len(created),
                                                 len(deleted))
    if fo.rows is None or lo.rows is None:
        return "foreign %r, local %r" % (fo, lo)
    ids = [r[0] for r in fo.rows]
    dup = [i for i, n in collections.Counter(ids).items() if n > 1]
    if dup:
        return "ids returned more than once: %s" % ", ".join(dup[:5])
    local = {r[0]: r for r in lo.rows}
    stable = set(local) - deleted
    missing = sorted(stable - set(ids))
    if missing:
        return "%d numbers that existed for the whole scan are missing " \
               "(%s), mutations created %d deleted %d" % (
                   len(missing), ", ".join(missing[:3]), len(created),
                   len(deleted))
    never = [i for i in ids if i not in local and i not in created]
    if never:
        return "rows that never existed (or do not match): %s" % (
            ", ".join(never[:3]))
    wrong = [r for r in fo.rows if r[0] in stable and r != local[r[0]]]
    if wrong:
        return "rows differ from the data: foreign %s local %s" % (
            fmt_rows(wrong, 2), fmt_rows([local[r[0]] for r in wrong], 2))
    if "ORDER BY" in q.sql:
        keys = [float(r[3]) for r in fo.rows]
        desc = q.sql.endswith("DESC")
        if keys != sorted(keys, reverse=desc):
            return "rows are not in ORDER BY created_at%s order" % (
                " DESC" if desc else "")
    return None


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

class Context:
    """Everything one run needs: options, mock, data, connection."""

    def __init__(self, args):
        """Read the environment and reset the mock."""
        self.args = args
        url = os.environ.get("VAPI_MOCK_URL")
        self.key = os.environ.get("VAPI_MOCK_KEY")
        if not url or not self.key:
            raise SystemExit("difftest: set VAPI_MOCK_URL and VAPI_MOCK_KEY")
        self.url = url
        self.mock = Mock(url)
        self.mock.reset(MOCK_COUNT, MOCK_SEED)
        self.data = Data(self.mock.numbers())
        self.runner = None

    def restore_mock(self):
        """Reset the mock and check it holds the original data again."""
        self.mock.clear_mutations()
        self.mock.reset(MOCK_COUNT, MOCK_SEED)
        now = [n["id"] for n in self.mock.numbers()]
        if now != self.data.ids:
            raise SystemExit("difftest: the mock's data changed after a "
                             "reset; cannot go on")

    def setup(self):
        """Create the servers, tables, local copies and CRM tables."""
        r = self.runner
        r.execute(SETUP_SQL.format(url=sql_str(self.url),
                                   key=sql_str(self.key)))
        for t in TABLES:
            r.execute("CREATE TABLE %s AS SELECT * FROM %s"
                      % (t.local, t.foreign))
        self.create_crm()
        r.execute("ANALYZE difftest.crm_small, difftest.crm, difftest.crm_big, "
                  + ", ".join(
            t.local for t in TABLES))
        r.execute("ANALYZE difftest.phone_numbers, difftest.pn_typed")
        self.check_copies()

    def check_copies(self):
        """The local copies must hold exactly the mock's numbers."""
        r = self.runner
        n = len(self.data.ids)
        for t in TABLES:
            got = r.execute("SELECT count(*), count(DISTINCT %s) FROM %s"
                            % (t.unique, t.local))[0]
            if int(got[0]) != n or int(got[1]) != n:
                raise SystemExit("difftest: %s holds %s rows (%s distinct), "
                                 "the mock %d" % (t.local, got[0], got[1], n))
        for a, b in (("local_pn", "local_pn97"), ("local_pn", "local_pn2")):
            d = r.execute("SELECT count(*) FROM ((TABLE difftest.%s EXCEPT "
                          "ALL TABLE difftest.%s) UNION ALL (TABLE difftest.%s"
                          " EXCEPT ALL TABLE difftest.%s)) d" % (a, b, b, a))
            if int(d[0][0]):
                raise SystemExit("difftest: difftest.%s and difftest.%s "
                                 "differ" % (a, b))
        ids = set(r[0] for r in r.execute(
            "SELECT pid::text FROM difftest.local_odd"))
        if ids != set(self.data.ids):
            raise SystemExit("difftest: difftest.local_odd has other ids")

    def create_crm(self):
        """Two CRM tables: real ids (some twice, some in other case),
        unknown UUIDs and NULLs, and a timestamp per account."""
        rng = random.Random("%s:crm" % self.args.seed)
        times = self.data.times["createdAt"]
        for name, size in (("crm_small", 5), ("crm", 40), ("crm_big", 700)):
            rows = []
            ids = rng.sample(self.data.ids, size)
            ids += rng.sample(ids, size // 8)
            ids += list(UNKNOWN_IDS) + [None] * 3 + list(NON_UUIDS[:3])
            if size < 10:
                ids = ids[:size + 1] + [ids[0], UNKNOWN_IDS[0], None, "x"]
            rng.shuffle(ids)
            for n, vid in enumerate(ids):
                text = vid
                if vid in NON_UUIDS:
                    vid = None
                elif vid and rng.random() < 0.15:
                    text = vid.upper()
                elif vid and rng.random() < 0.05:
                    text = "".join(ch.upper() if rng.random() < 0.5 else ch
                                   for ch in vid)
                since = (fmt_instant(rng.choice(times), rng)
                         if rng.random() < 0.9 else None)
                rows.append("(%s, %s, %s, %s)" % (
                    sql_str("Account %04d" % n),
                    sql_str(vid) if vid else "NULL",
                    sql_str(text) if text else "NULL",
                    sql_str(since) if since else "NULL"))
            self.runner.execute(
                "CREATE TABLE difftest.%s (account text PRIMARY KEY, vapi_id "
                "uuid, vapi_text text, since timestamptz); INSERT INTO "
                "difftest.%s VALUES %s" % (name, name, ", ".join(rows)))

    def teardown(self):
        """Drop what setup made (unless --keep)."""
        if not self.args.keep:
            self.runner.execute(TEARDOWN_SQL)


def run_one(ctx, q):
    """Run and check one query; None when it passed, else a message."""
    args = ctx.args
    if q.faults and args.faults:
        ctx.mock.add_faults(q.faults)
    try:
        if q.churn and args.churn:
            return check_churn(q, ctx.runner, ctx.mock, ctx)
        fouts, louts = ctx.runner.run_pair(q)
        return compare_outcomes(q, ctx.runner, fouts, louts)
    finally:
        if q.faults and args.faults:
            ctx.mock.clear_faults()


def run_with_retry(ctx, q):
    """run_one, reconnecting and trying once more after a lost connection."""
    try:
        return run_one(ctx, q)
    except Lost as exc:
        first = str(exc)
    ctx.runner.connect()
    try:
        msg = run_one(ctx, q)
    except Lost as exc:
        ctx.runner.connect()
        return "connection lost twice (%s / %s)" % (first, exc)
    if msg is None:
        sys.stdout.write("note: q%d lost its connection once (%s); passed "
                         "on the second try\n" % (q.index, first))
    return msg


def parse_args(argv):
    """Command-line options."""
    ap = argparse.ArgumentParser(
        prog="difftest.py",
        description="Differential query tester for vapi_fdw: foreign table "
                    "against a local copy of the same data.")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queries", type=int, default=3000)
    ap.add_argument("--dbname", default="contrib_regression")
    ap.add_argument("--faults", action="store_true",
                    help="run the middle tenth of the queries under mock "
                         "faults that must not change any answer")
    ap.add_argument("--churn", action="store_true",
                    help="create/delete numbers during every %dth query "
                         "(scans of the page_size 97 table)" % CHURN_EVERY)
    ap.add_argument("--list", action="store_true",
                    help="print the generated queries, run nothing")
    ap.add_argument("--only", type=int, metavar="K",
                    help="run only query number K (give the same --seed, "
                         "--queries, --faults and --churn as the run that "
                         "reported it)")
    ap.add_argument("--verbose", action="store_true",
                    help="print every query with its row counts and time")
    ap.add_argument("--keep", action="store_true",
                    help="keep the difftest schemas and servers at the end")
    return ap.parse_args(argv)


def report(q, msg, failed, verbose, elapsed_ms):
    """Print what one query gave: a MISMATCH line (the first few), or with
    --verbose a line for every query."""
    if verbose:
        print("%s %.0f ms %s: %s" % ("FAIL" if msg else "ok", elapsed_ms,
                                    q.summary, q.describe()))
    if msg is not None:
        if failed <= MAX_PRINTED:
            print("MISMATCH %s  ==> %s" % (q.describe(), msg))
        elif failed == MAX_PRINTED + 1:
            print("(further mismatches are counted, not printed)")
    sys.stdout.flush()


def run_all(ctx, indexes, nq, counts):
    """Generate, run and check the queries; counts[0] passed, [1] failed."""
    for i in indexes:
        q = generate(ctx.args.seed, ctx.data, i, nq)
        t0 = time.monotonic()
        msg = run_with_retry(ctx, q)
        counts[0 if msg is None else 1] += 1
        report(q, msg, counts[1], ctx.args.verbose,
               (time.monotonic() - t0) * 1000)
        if i % 200 == 199:
            ctx.mock.clear_log()


def interrupt(signum, frame):
    """SIGTERM ends the run like Ctrl-C: summary printed, rules removed."""
    raise KeyboardInterrupt


def main(argv=None):
    """Set up, generate, run, compare, report."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    started = time.monotonic()
    ctx = Context(args)
    indexes = ([args.only] if args.only is not None
               else range(args.queries))
    nq = max(args.queries, (args.only or 0) + 1)
    if args.list:
        for i in indexes:
            print(generate(args.seed, ctx.data, i, nq).describe())
        return 0
    ctx.runner = Runner(args.dbname)
    ctx.setup()
    counts = [0, 0]
    interrupted = False
    try:
        run_all(ctx, indexes, nq, counts)
        ctx.teardown()
    except KeyboardInterrupt:
        interrupted = True
        print("difftest: interrupted")
        ctx.mock.clear_faults()
        ctx.mock.clear_mutations()
        try:
            ctx.runner.conn.cancel()
            ctx.runner.execute("ROLLBACK")
            ctx.teardown()
        except psycopg2.Error:
            pass                        # the next run drops them anyway
    print("difftest: elapsed %.1f s" % (time.monotonic() - started))
    print("difftest: %d passed, %d failed" % tuple(counts))
    if interrupted:
        return 130
    return 0 if counts[1] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

# vapimock/store.py - the in-memory store of the Vapi mock: the numbers and
# their sorted indexes, listing (filters, paging, sort order, retention),
# the page cache, lookups and the ids and numbers of created entries, and
# the behaviour switches as they shape stored numbers and list answers.  It
# also holds the request log with its clock and the count of API requests
# in progress, and the fault and mutation rules, which faults.py works on.
# Everything in it is guarded by its one lock.

import bisect
import contextlib
import gc
import hashlib
import math
import threading
import time

from .data import (DEFAULT_MAX_STEP, MIN_MS, derived_uuid, dumps, fmt_ts,
                   generate_dataset, parse_iso, resolve_newest)

PAGE_CACHE_MAX = 512
LEGACY_URL = "https://legacy-hooks.example.com/vapi/%s"


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


@contextlib.contextmanager
def bulk_build():
    """Build a large data set with the cycle collector off, then move every
    object it made out of the collector's sight (gc.freeze).

    Stored numbers hold no reference cycles, so the collector has nothing
    to find among them; left on, it walks them again and again while they
    are made (at 100,000 numbers, more than a second of a reset), and after
    a plain gc.disable() the first collection walks them all at once, in
    the middle of some later request."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


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


def renamed(obj, mapping):
    """The object as served under "rename_fields": each top-level key the
    mapping names is renamed in place (it keeps its position) or, mapped to
    "", dropped.  A key that keeps its name gives way to a key renamed to
    it; of two keys renamed to one name the later value wins, at the
    position of the first.  A non-object is served as it is."""
    if type(obj) is not dict:
        return obj
    taken = {name for key, name in mapping.items() if name and key in obj}
    out = {}
    for key, value in obj.items():
        name = mapping.get(key)
        if name is None:
            if key in taken:
                continue
            name = key
        elif not name:
            continue
        out[name] = value
    return out


class Entry:
    """One stored number with its cached serialization and sort keys.

    ms/upd_ms are the printed createdAt/updatedAt in milliseconds; us/upd_us
    the stored values in microseconds (ms * 1000 + extra, extra being 0
    unless the "microseconds" switch is on).  legacy holds the pre-2025
    fields shown under "legacy_secrets" (see legacy_fields), else None.
    raw is the JSON of view(), the object the control routes show; shown
    caches the JSON the API serves under "rename_fields" as (mapping,
    bytes), else None (see Store.served)."""
    __slots__ = ("key", "obj", "raw", "ms", "upd_ms", "search", "text",
                 "extra", "us", "upd_us", "legacy", "shown")

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
        self.shown = None
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
        # API requests in progress: a gauge of the server, which neither a
        # reset nor a log clear touches (their requests still end).
        self.inflight = 0
        self.reset(count, seed, max_step, newest)

    def reset(self, count, seed, max_step=DEFAULT_MAX_STEP, newest=None):
        """Regenerate the data; clear log, faults, mutations, counters.

        `newest` is None, "now" or an ISO 8601 date-time (see
        generate_dataset).  Raises ValueError, leaving everything as it was,
        when the data set cannot be built."""
        with bulk_build():
            org_id, objs = generate_dataset(count, seed, max_step,
                                            resolve_newest(newest))
            self.entries = {}
            for obj, ms, upd_ms in objs:
                self.entries[obj["id"]] = Entry(obj["id"], obj, ms, upd_ms)
            del objs
            self.behaviour = {}
            self.retention_ms = None
            self.reindex()
        self.count = count
        self.seed = seed
        self.max_step = max_step
        self.newest = newest
        self.org_id = org_id
        self.clear_log()
        self.faults = []
        self.mutation_rules = []
        self.mut_created = []
        self.mut_deleted = []
        self.create_counter = 0
        self.planted_counter = 0
        self.conn_counter = 0
        self.blackhole_connections = 0
        self.touch()

    def clear_log(self):
        """Empty the request log: its sequence numbers, its clock (log_ms)
        and max_inflight start again."""
        self.log = []
        self.seq = 0
        self.log_epoch = time.monotonic()
        self.max_inflight = 0

    def log_ms(self):
        """Milliseconds on the monotonic clock since the last log clear or
        reset, rounded to microseconds."""
        return round((time.monotonic() - self.log_epoch) * 1000, 3)

    def request_started(self, entry):
        """Log an API request as started: its sequence number, start_ms and
        inflight (the API requests in progress, itself included)."""
        self.seq += 1
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        entry.update(seq=self.seq, start_ms=self.log_ms(), end_ms=None,
                     inflight=self.inflight)
        self.log.append(entry)

    def request_ended(self, entry):
        """Note the end of an API request (answer sent or connection given
        up): its end_ms, and one request fewer in progress.  Only the first
        call for a started entry counts."""
        if entry.get("start_ms") is not None and entry["end_ms"] is None:
            self.inflight -= 1
            entry["end_ms"] = self.log_ms()

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
        """JSON array bytes built from the entries' cached bytes (the stored
        objects, as the control routes show them)."""
        return b"[" + b",".join([e.raw for e in entries]) + b"]"

    def served(self, entry):
        """The JSON bytes of an entry as the API routes serve it: its raw
        bytes, or under "rename_fields" the renamed object (cached on the
        entry for the mapping in force; a new mapping, even an equal one,
        is a new object, and refresh() drops the cache)."""
        mapping = self.behaviour.get("rename_fields")
        if mapping is None:
            return entry.raw
        shown = entry.shown
        if shown is None or shown[0] is not mapping:
            shown = entry.shown = (mapping,
                                   dumps(renamed(entry.view(), mapping)))
        return shown[1]

    def join_served(self, entries):
        """JSON array bytes of the entries as the API routes serve them."""
        if self.behaviour.get("rename_fields") is None:
            return self.join(entries)
        return b"[" + b",".join([self.served(e) for e in entries]) + b"]"

    def page_size(self, limit):
        """The number of rows a list page really holds (cap_limit)."""
        cap = self.behaviour.get("cap_limit")
        return limit if cap is None else min(limit, cap)

    def list_v1(self, params):
        """Body of GET /phone-number."""
        desc = self.behaviour.get("v1_order") != "ASC"
        _, rows = self.list_entries(params, desc, 0,
                                    self.page_size(params["limit"]))
        return self.join_served(rows)

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
        return (b'{"results":' + self.join_served(rows) + b',"metadata":'
                + dumps(meta) + b"}")

    # -- page cache --------------------------------------------------------

    def page(self, v2, query, params):
        """The page-cache slot [body, gzip body or None] of a list request
        (v1 or v2, by its query string).  Call with the lock held."""
        cache_key = (v2, query)
        slot = self.page_cache.get(cache_key)
        if slot is None:
            data = self.list_v2(params) if v2 else self.list_v1(params)
            slot = [data, None]
            if len(self.page_cache) >= PAGE_CACHE_MAX:
                self.page_cache.clear()
            self.page_cache[cache_key] = slot
        return slot

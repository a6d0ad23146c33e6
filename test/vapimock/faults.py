# vapimock/faults.py - fault injection of the Vapi mock: the fault rules of
# POST /__mock/faults (checked, then counted against the requests they
# match), the answers they put in place of the API's (error statuses with
# Retry-After, a proxy's HTML page, any body, malformed JSON), reproducible
# damage to a body, and the mutation rules that delete and create numbers
# between two list requests (churn between pages).  The handler in
# server.py applies the faults that act on the connection (latency, cut,
# truncate, stall) and on the sent answer (content_type, corrupt).

import random

from .data import BASE_MS, PROVIDERS, build_number, dumps
from .response import JSON_CT, Response, error_response, json_response, phrase
from .store import Entry
from .validation import is_num

MALFORMED_BODY = b'{"results": [ {"id": '
NGINX_PAGE = ("<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
              "<center><h1>{code} {phrase}</h1></center>\r\n"
              "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
HEADERS_MSG = "headers must be an object whose values are strings"
HEADER_TEXT_MSG = ("header names must be non-empty and without ':', and "
                   "names and values must not contain CR or LF")
EVERY_MSG = "every must be an integer >= 1"
CONTAINS_MSG = "contains must be a string"

FAULT_KINDS = ("latency", "status", "malformed", "truncate", "cut", "stall",
               "html", "content_type", "body", "corrupt")


def fault_answer(fault):
    """The answer a fault puts in place of the API's: a Response for the
    kinds status, html, body and malformed, else None (the request is then
    served, or the fault is applied while sending)."""
    kind = fault["kind"] if fault else None
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
        resp = None
    return resp


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


def pick_fault(store, method, path, target):
    """Count this request against every matching rule; return the first
    rule that hits it (a copy), or None.  Call with the lock held.

    A rule matches by "match" (method and path prefix) and "contains"
    (text of the target, path and query string as received).  It hits
    the requests at positions every, 2*every, ... after its first `skip`
    matching requests, up to `times` hits (0: no limit); with every = 1
    that is the skip/times window itself."""
    chosen = None
    for rule in store.faults:
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
        contains = rule.get("contains")
        if contains is not None and contains not in target:
            continue
        rule["seen"] += 1
        pos = rule["seen"] - rule["skip"]
        every, times = rule.get("every", 1), rule["times"]
        if chosen is None and pos > 0 and pos % every == 0 and \
                (times == 0 or pos // every <= times):
            chosen = dict(rule)
    return chosen


def _rule_list(data, what):
    """The rules of a control request (one object or an array), or the
    error answer for a body that is neither."""
    if type(data) is dict:
        data = [data]
    if type(data) is not list:
        return None, error_response(400, "expected a JSON array of %s rules"
                                    % what)
    return data, None


def add_faults(store, data):
    """POST /__mock/faults: append fault rules."""
    data, err = _rule_list(data, "fault")
    if err:
        return err
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
        if "contains" in item and type(item["contains"]) is not str:
            return error_response(400, CONTAINS_MSG)
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
    with store.lock:
        store.faults.extend(rules)
        return json_response(200, {"ok": True, "faults": len(store.faults)})


def fire_mutations(store):
    """Count one served list request; apply rules that are now due.  Call
    with the store's lock held."""
    for rule in store.mutation_rules:
        if rule["fired"]:
            continue
        rule["seen"] += 1
        if rule["seen"] >= rule["before_list_request"]:
            rule["fired"] = True
            apply_mutation(store, rule)


def apply_mutation(store, rule):
    """Delete k numbers at a position and create k new ones there (the
    store's lock held)."""
    at = rule["at"]
    n_create, n_delete = rule["create"], rule["delete"]
    order = store.desc
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
        store.remove(key)
        store.mut_deleted.append(key)
    used = store.used_numbers()
    for ms in stamps:
        number_id = store.next_id()
        counter = store.create_counter
        rng = random.Random("vapi-mock:%s:mutation:%d" % (store.seed, counter))
        obj = build_number(rng, store.count + counter,
                           PROVIDERS[(counter - 1) % len(PROVIDERS)],
                           store.org_id, number_id, ms, ms, False, used)
        store.insert(Entry(number_id, obj, ms, ms))
        store.mut_created.append(number_id)
    store.touch()


def add_mutations(store, data):
    """POST /__mock/mutations: append mutation rules."""
    data, err = _rule_list(data, "mutation")
    if err:
        return err
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
    with store.lock:
        store.mutation_rules.extend(rules)
        return json_response(200, {"ok": True,
                                   "rules": len(store.mutation_rules)})

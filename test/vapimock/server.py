# vapimock/server.py - the HTTP side of the Vapi mock: the threading server
# and its handler (request bodies, keep-alive, gzip, the API routes and the
# /__mock control routes), the black hole listener, and main(), which reads
# the command line of test/vapi_mock.py and serves until a signal.

import argparse
import gzip
import json
import os
import random
import re
import select
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

from .data import (DEFAULT_COUNT, DEFAULT_KEY, DEFAULT_MAX_STEP, DEFAULT_SEED,
                   NEWEST_MSG, PROVIDERS, UNKNOWN_PROVIDER, fmt_ts, now_ms,
                   parse_iso)
from .faults import (add_faults, add_mutations, corrupt_bytes, fault_answer,
                     fire_mutations, pick_fault)
from .response import (Response, error_response, json_response, nest_error,
                       phrase)
from .store import Entry, Store
from .validation import (BUY_FIELDS, CREATE_FIELDS, CREATE_REQUIRED,
                         PROVIDER_MSG, UPDATE_FIELDS, check_behaviour,
                         validate_body, validate_list_query)

MAX_API_BODY = 1024 * 1024         # larger API request bodies get 413
MAX_CONTROL_BODY = 256 * 1024 * 1024
DISCARD_CAP = 64 * 1024 * 1024     # read and drop oversized bodies up to this
GZIP_MIN = 1024                    # compress answers larger than this

UNAUTHORIZED_BODY = (
    b'{"statusCode":401,"error":"Unauthorized","message":"Invalid Key. Hot tip, '
    b'you may be using the private key instead of the public key, or vice versa."}')

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# --------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------

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
            retry_after = next((value for name, value in headers
                                if name.lower() == "retry-after"), None)
            with self.server.store.lock:
                log_entry["status"] = resp.status
                log_entry["retry_after"] = retry_after
        head = self.head_bytes(resp.status, ctype, len(wire), headers)
        if self.command == "HEAD":
            self.send_answer(head, log_entry)
        elif kind == "truncate":
            self.send_raw(head + wire[:len(wire) // 2])
        elif kind == "stall":
            if self.send_raw(head + wire[:10]):
                self.server.stopping.wait(float(fault.get("ms", 60000)) / 1000)
        else:
            self.send_answer(head + wire, log_entry)

    def send_answer(self, data, log_entry):
        """Send a whole answer.  An API request is marked as ended just
        before the last byte goes, so that a client that has read all of
        it finds it ended (its next request never overlaps it)."""
        if log_entry is None or len(data) < 2:
            if log_entry is not None:
                self.end_request(log_entry)
            return self.send_raw(data)
        if not self.send_raw(data[:-1]):
            return False
        self.end_request(log_entry)
        return self.send_raw(data[-1:])

    def end_request(self, log_entry):
        """Mark an API request as ended (only the first call counts)."""
        store = self.server.store
        with store.lock:
            store.request_ended(log_entry)

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
        """Log an API request, apply any fault, and answer it.

        The log entry gets its timing (start_ms, end_ms, inflight) from the
        store; whatever happens while answering, the request is marked as
        ended before the client can see the end of its answer (its last
        byte, or the connection closed)."""
        store = self.server.store
        method = self.command
        auth = self.auth_state()
        try:
            parsed = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            parsed = None
        entry = {"seq": None, "method": method, "path": target,
                 "conn": self.conn_serial,
                 "user_agent": self.headers.get("User-Agent"),
                 "accept_encoding": self.headers.get("Accept-Encoding"),
                 "content_type": self.headers.get("Content-Type"),
                 "auth": auth, "body": parsed, "status": None,
                 "fault": None, "retry_after": None, "start_ms": None,
                 "end_ms": None, "inflight": None}
        try:
            with store.lock:
                # One hold of the lock: the log order is the order in which
                # the fault rules counted the requests.
                store.request_started(entry)
                fault = pick_fault(store, method, path, target)
                if fault:
                    entry["fault"] = fault["kind"]
            self.answer(entry, fault, target, path, query, body, too_large,
                        auth)
        finally:
            # Cut, truncated, stalled or failed: ended before the handler
            # closes the connection.
            self.end_request(entry)

    def answer(self, entry, fault, target, path, query, body, too_large,
               auth):
        """Apply the request's fault, if any, and send its answer."""
        kind = fault["kind"] if fault else None
        if kind == "latency":
            # Outside the store's lock: other requests go on meanwhile.
            self.server.stopping.wait(float(fault.get("ms", 0)) / 1000)
        if kind == "cut":
            self.close_connection = True
            return
        resp = fault_answer(fault)
        if resp is None:
            try:
                resp = self.serve(self.command, target, path, query, body,
                                  too_large, auth)
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
            fire_mutations(store)
            slot = store.page(v2, query, params)
        return Response(200, slot[0], cache=slot)

    def get_one(self, number_id):
        """GET /phone-number/{id}."""
        store = self.server.store
        with store.lock:
            entry = store.lookup(number_id)
            if entry is None:
                return error_response(404, "Phone number not found")
            return Response(200, store.served(entry))

    def delete(self, number_id):
        """DELETE /phone-number/{id}: answers the deleted object."""
        store = self.server.store
        with store.lock:
            entry = store.lookup(number_id)
            if entry is None:
                return error_response(404, "Phone number not found")
            store.remove(entry.key)
            store.touch()
            return Response(200, store.served(entry))

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
            return self.store_created(obj)

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
            return self.store_created(obj)

    def store_created(self, obj):
        """Stamp a number just created, store it (the store's lock held)
        and answer 201 with it."""
        store = self.server.store
        now = now_ms()
        obj["createdAt"] = fmt_ts(now)
        obj["updatedAt"] = fmt_ts(now)
        entry = Entry(obj["id"], obj)
        store.insert(entry, fresh=True)
        store.touch()
        return Response(201, store.served(entry))

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
            return Response(200, store.served(entry))

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
                store.clear_log()
            return json_response(200, {"ok": True})
        if route == ("GET", "/__mock/stats"):
            with store.lock:
                return json_response(200, {
                    "requests": len(store.log),
                    "connections": store.conn_counter,
                    "numbers": len(store.entries),
                    "blackhole_connections": store.blackhole_connections,
                    "blackhole_port": self.server.blackhole_port,
                    "inflight": store.inflight,
                    "max_inflight": store.max_inflight})
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
            return add_faults(store, data)
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
            return add_mutations(store, data)
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

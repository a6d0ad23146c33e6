#!/usr/bin/env python3
# mockctl.py - command-line client for the control API of vapi_mock.py.
#
# Meant for shell scripts and for psql's \! in regression tests, so every
# command prints deterministic, stable text (no timestamps, no ports except
# where the URL itself is asked for by wait-ready).
#
# The mock's base URL comes from --url or the VAPI_MOCK_URL environment
# variable (e.g. http://127.0.0.1:54321).
#
# Commands:
#   reset [--count N] [--seed S] [--max-step N] [--newest now|ISO]
#                                     regenerate the data set, clear everything
#                                     (behaviour switches included; options
#                                     left out take the mock's command-line
#                                     values)
#   requests [--clear] [--body] [--conn] [--headers] [--sorted]
#                                     one line per logged API request, in log
#                                     order; --sorted: the same lines sorted
#                                     by text (concurrent requests reach the
#                                     log in no fixed order)
#   clear                             clear the request log
#   count [--match PREFIX]            number of logged requests
#   stats                             requests=N connections=M numbers=K
#                                     blackhole=B (connections the black hole
#                                     accepted)
#   blackhole-port                    the black hole's port, or "none"
#   overlap                           max_inflight=N: the most API requests
#                                     in progress at once since the last log
#                                     clear or reset
#   held-after STATUS                 answers=A started_during_hold=S: A is
#                                     the number of logged answers with
#                                     STATUS and a Retry-After of R seconds
#                                     (an HTTP date does not count); S the
#                                     number of API requests that started
#                                     after one of them was sent and less
#                                     than R*1000-100 ms later (each request
#                                     counted once).  A client that holds all
#                                     its concurrent requests for Retry-After
#                                     gets S=0.  --grace MS: requests that
#                                     started less than MS after the answer
#                                     was sent do not count (the client had
#                                     not read it yet)
#   rate [--window-ms MS] [--at-most N]
#                                     max_in_window=M requests=R: the most
#                                     API requests that started within any
#                                     MS milliseconds (default 1000) since
#                                     the last log clear, and how many there
#                                     were in all; with --at-most, instead
#                                     "at_most_N=yes requests=R" or
#                                     "at_most_N=no requests=R" (stable text
#                                     for expected files)
#   timeline                          one line per logged API request in
#                                     start order: "start_ms end_ms inflight
#                                     METHOD PATH STATUS" ("-" for an end or
#                                     status not known); times vary from run
#                                     to run: for people and benchmarks, not
#                                     for expected files
#   fault JSON | faults-clear         install fault rule(s) / remove them all
#   mutate JSON | mutations | mutations-clear
#                                     install mutation rule(s) / show what was
#                                     created and deleted / remove the rules
#   behave JSON                       merge behaviour switches (a JSON object,
#                                     e.g. '{"no_v2":true}'; null turns one
#                                     off); prints nothing
#   behaviour                         the switches on, as compact JSON with
#                                     sorted keys ({} when none)
#   behave-clear                      turn every behaviour switch off
#   put JSON                          plant raw objects (replace by id)
#   dump                              every number, one JSON object per line
#   get ID                            one number, or "not found"
#   wait-ready --port-file FILE [--timeout 10]
#                                     wait for a starting mock, print its URL
#
# Exits non-zero with a one-line message on stderr when the mock cannot be
# reached or answers an error.  Python 3 standard library only.

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT = 60
HOLD_TOLERANCE_MS = 100   # held-after: a request this close to the end of
                          # a Retry-After hold is not counted as inside it


class CtlError(Exception):
    """A failure to report on stderr (one line) with a non-zero exit."""


def out(line):
    """Print one line to stdout as UTF-8, whatever the locale says."""
    sys.stdout.buffer.write(line.encode("utf-8") + b"\n")


def compact(value):
    """Compact JSON with sorted keys (stable text for expected files)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def call(base, method, path, payload=None, allow_404=False):
    """Send one request to the mock and return the decoded JSON answer.

    Returns None for a 404 when allow_404 is set."""
    data = None
    headers = {"Accept": "application/json"}
    if payload is not None:
        data = json.dumps(payload).encode("utf-8")
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base.rstrip("/") + path, data=data,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and allow_404:
            return None
        detail = ""
        try:
            detail = json.loads(exc.read().decode("utf-8")).get("message", "")
        except (ValueError, AttributeError, OSError):
            pass
        raise CtlError("the mock answered %d to %s %s%s"
                       % (exc.code, method, path,
                          (": %s" % detail) if detail else ""))
    except (urllib.error.URLError, OSError) as exc:
        raise CtlError("the mock is unreachable (%s)" % getattr(
            exc, "reason", exc).__class__.__name__)
    try:
        return json.loads(body.decode("utf-8")) if body else None
    except ValueError:
        raise CtlError("the mock answered invalid JSON to %s %s"
                       % (method, path))


def parse_json_arg(text, what):
    """Parse a JSON command-line argument; an object becomes [object]."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CtlError("%s is not valid JSON: %s" % (what, exc))
    return [value] if isinstance(value, dict) else value


def base_url(args):
    """The mock's base URL from --url or VAPI_MOCK_URL."""
    url = args.url or os.environ.get("VAPI_MOCK_URL")
    if not url:
        raise CtlError("no mock URL: set VAPI_MOCK_URL or pass --url")
    return url


def cmd_reset(args):
    """reset: regenerate the data set and clear log, faults, mutations."""
    payload = {}
    if args.count is not None:
        payload["count"] = args.count
    if args.seed is not None:
        payload["seed"] = args.seed
    if args.max_step is not None:
        payload["max_step"] = args.max_step
    if args.newest is not None:
        payload["newest"] = args.newest
    call(base_url(args), "POST", "/__mock/reset", payload)


def cmd_requests(args):
    """requests: print the request log, one request per line (in log
    order, or sorted by text with --sorted)."""
    base = base_url(args)
    lines = []
    for entry in call(base, "GET", "/__mock/requests"):
        line = "%s %s" % (entry["method"], entry["path"])
        if args.conn:
            line = "conn=%s %s" % (entry["conn"], line)
        if args.body and entry.get("body") is not None:
            line += " " + compact(entry["body"])
        if args.headers:
            line += " [auth=%s ua=%s gzip=%s%s]" % (
                entry.get("auth"), entry.get("user_agent"),
                "yes" if "gzip" in (entry.get("accept_encoding") or "") else "no",
                (" ctype=%s" % entry["content_type"]) if entry.get("content_type") else "")
        lines.append(line)
    if args.sorted:
        lines.sort()
    for line in lines:
        out(line)
    if args.clear:
        call(base, "DELETE", "/__mock/requests")


def cmd_clear(args):
    """clear: empty the request log."""
    call(base_url(args), "DELETE", "/__mock/requests")


def cmd_count(args):
    """count: number of logged requests, optionally by 'METHOD path' prefix."""
    entries = call(base_url(args), "GET", "/__mock/requests")
    if args.match:
        entries = [e for e in entries
                   if ("%s %s" % (e["method"], e["path"])).startswith(args.match)]
    out(str(len(entries)))


def cmd_stats(args):
    """stats: request, connection and number counts."""
    s = call(base_url(args), "GET", "/__mock/stats")
    out("requests=%d connections=%d numbers=%d blackhole=%d"
        % (s["requests"], s["connections"], s["numbers"],
           s.get("blackhole_connections", 0)))


def cmd_overlap(args):
    """overlap: the most API requests in progress at once."""
    s = call(base_url(args), "GET", "/__mock/stats")
    out("max_inflight=%d" % s["max_inflight"])


def retry_seconds(value):
    """The seconds of a Retry-After value, or None (absent, an HTTP date or
    anything else that is not a non-negative number)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds < float("inf") else None


def cmd_held_after(args):
    """held-after: requests started while a Retry-After answer held."""
    entries = call(base_url(args), "GET", "/__mock/requests")
    holds = []
    for entry in entries:
        seconds = retry_seconds(entry.get("retry_after"))
        if entry.get("status") != args.status or seconds is None or \
                entry.get("end_ms") is None:
            continue
        holds.append((entry["end_ms"] + args.grace,
                      entry["end_ms"] + seconds * 1000 - HOLD_TOLERANCE_MS))
    started = sum(1 for entry in entries
                  if any(sent < entry["start_ms"] < until
                         for sent, until in holds))
    out("answers=%d started_during_hold=%d" % (len(holds), started))


def max_in_window(starts, window_ms):
    """The most of the sorted start times that fall in any half-open span
    [t, t + window_ms)."""
    best = 0
    first = 0
    for last, start in enumerate(starts):
        while starts[first] <= start - window_ms:
            first += 1
        best = max(best, last - first + 1)
    return best


def cmd_rate(args):
    """rate: the most API requests started within any window."""
    entries = call(base_url(args), "GET", "/__mock/requests")
    starts = sorted(entry["start_ms"] for entry in entries)
    most = max_in_window(starts, args.window_ms)
    if args.at_most is not None:
        out("at_most_%d=%s requests=%d"
            % (args.at_most, "yes" if most <= args.at_most else "no",
               len(starts)))
    else:
        out("max_in_window=%d requests=%d" % (most, len(starts)))


def cmd_timeline(args):
    """timeline: the logged API requests in start order, with their times."""
    entries = call(base_url(args), "GET", "/__mock/requests")
    for entry in sorted(entries, key=lambda e: (e["start_ms"], e["seq"])):
        end = entry.get("end_ms")
        status = entry.get("status")
        out("%.3f %s %d %s %s %s" % (
            entry["start_ms"], "-" if end is None else "%.3f" % end,
            entry["inflight"], entry["method"], entry["path"],
            "-" if status is None else status))


def cmd_blackhole_port(args):
    """blackhole-port: the port of the black hole listener, or 'none'."""
    port = call(base_url(args), "GET", "/__mock/stats").get("blackhole_port")
    out("none" if port is None else "%d" % port)


def cmd_fault(args):
    """fault: append fault rule(s)."""
    call(base_url(args), "POST", "/__mock/faults",
         parse_json_arg(args.json, "the fault rule"))


def cmd_faults_clear(args):
    """faults-clear: remove every fault rule."""
    call(base_url(args), "DELETE", "/__mock/faults")


def cmd_mutate(args):
    """mutate: append mutation rule(s)."""
    call(base_url(args), "POST", "/__mock/mutations",
         parse_json_arg(args.json, "the mutation rule"))


def cmd_mutations(args):
    """mutations: how many numbers the mutation rules created and deleted."""
    m = call(base_url(args), "GET", "/__mock/mutations")
    out("created=%d deleted=%d" % (len(m["created"]), len(m["deleted"])))


def cmd_mutations_clear(args):
    """mutations-clear: remove every mutation rule."""
    call(base_url(args), "DELETE", "/__mock/mutations")


def cmd_behave(args):
    """behave: merge behaviour switches into the mock's current set."""
    try:
        switches = json.loads(args.json)
    except ValueError as exc:
        raise CtlError("the switches are not valid JSON: %s" % exc)
    call(base_url(args), "POST", "/__mock/behaviour", switches)


def cmd_behaviour(args):
    """behaviour: print the switches that are on, sorted compact JSON."""
    out(compact(call(base_url(args), "GET", "/__mock/behaviour")))


def cmd_behave_clear(args):
    """behave-clear: turn every behaviour switch off."""
    call(base_url(args), "DELETE", "/__mock/behaviour")


def cmd_put(args):
    """put: plant raw objects in the store (replacing by id)."""
    call(base_url(args), "POST", "/__mock/numbers",
         parse_json_arg(args.json, "the objects"))


def cmd_dump(args):
    """dump: every stored number, newest first, one JSON object per line."""
    for obj in call(base_url(args), "GET", "/__mock/numbers"):
        out(compact(obj))


def cmd_get(args):
    """get: one stored number as JSON, or 'not found'."""
    obj = call(base_url(args), "GET", "/__mock/numbers/"
               + urllib.parse.quote(args.id, safe=""), allow_404=True)
    out("not found" if obj is None else compact(obj))


def cmd_wait_ready(args):
    """wait-ready: wait for the port file and a live mock, print its URL."""
    deadline = time.monotonic() + args.timeout
    while True:
        port = None
        try:
            with open(args.port_file) as f:
                text = f.read().strip()
            if text.isdigit():
                port = int(text)
        except OSError:
            pass
        if port:
            url = "http://%s:%d" % (args.host, port)
            try:
                call(url, "GET", "/__mock/stats")
                out(url)
                return
            except CtlError:
                pass
        if time.monotonic() >= deadline:
            raise CtlError("the mock did not become ready within %g s"
                           % args.timeout)
        time.sleep(0.05)


def main(argv=None):
    """Parse the command line and run one command."""
    ap = argparse.ArgumentParser(prog="mockctl.py",
                                 description="Control the Vapi API mock.")
    ap.add_argument("--url", help="mock base URL (default: $VAPI_MOCK_URL)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("reset")
    p.add_argument("--count", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-step", type=int,
                   help="largest gap between consecutive createdAt values (s)")
    p.add_argument("--newest", metavar="now|ISO",
                   help="put the newest createdAt in this second")
    p.set_defaults(func=cmd_reset)

    p = sub.add_parser("requests")
    p.add_argument("--clear", action="store_true")
    p.add_argument("--body", action="store_true")
    p.add_argument("--conn", action="store_true")
    p.add_argument("--headers", action="store_true",
                   help="append auth state, User-Agent, gzip and Content-Type")
    p.add_argument("--sorted", action="store_true",
                   help="sort the lines by text")
    p.set_defaults(func=cmd_requests)

    sub.add_parser("clear").set_defaults(func=cmd_clear)

    p = sub.add_parser("count")
    p.add_argument("--match")
    p.set_defaults(func=cmd_count)

    sub.add_parser("stats").set_defaults(func=cmd_stats)
    sub.add_parser("blackhole-port").set_defaults(func=cmd_blackhole_port)
    sub.add_parser("overlap").set_defaults(func=cmd_overlap)

    p = sub.add_parser("held-after")
    p.add_argument("status", type=int, metavar="STATUS")
    p.add_argument("--grace", type=float, default=0.0, metavar="MS")
    p.set_defaults(func=cmd_held_after)
    sub.add_parser("timeline").set_defaults(func=cmd_timeline)
    p = sub.add_parser("rate")
    p.add_argument("--window-ms", type=float, default=1000.0, metavar="MS")
    p.add_argument("--at-most", type=int, metavar="N")
    p.set_defaults(func=cmd_rate)

    p = sub.add_parser("fault")
    p.add_argument("json")
    p.set_defaults(func=cmd_fault)
    sub.add_parser("faults-clear").set_defaults(func=cmd_faults_clear)

    p = sub.add_parser("mutate")
    p.add_argument("json")
    p.set_defaults(func=cmd_mutate)
    sub.add_parser("mutations").set_defaults(func=cmd_mutations)
    sub.add_parser("mutations-clear").set_defaults(func=cmd_mutations_clear)

    p = sub.add_parser("behave")
    p.add_argument("json")
    p.set_defaults(func=cmd_behave)
    sub.add_parser("behaviour").set_defaults(func=cmd_behaviour)
    sub.add_parser("behave-clear").set_defaults(func=cmd_behave_clear)

    p = sub.add_parser("put")
    p.add_argument("json")
    p.set_defaults(func=cmd_put)

    sub.add_parser("dump").set_defaults(func=cmd_dump)

    p = sub.add_parser("get")
    p.add_argument("id")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("wait-ready")
    p.add_argument("--port-file", required=True)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=cmd_wait_ready)

    args = ap.parse_args(argv)
    try:
        args.func(args)
    except CtlError as exc:
        sys.stderr.write("mockctl: %s\n" % exc)
        return 1
    except BrokenPipeError:
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

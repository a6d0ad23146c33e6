# vapimock/data.py - the data of the Vapi mock: the constants every module
# shares, the time, id and JSON helpers, and the deterministic data set
# (phone-number objects of every provider, each in its provider's key
# order) that --count, --seed, --max-step and --newest determine.

import datetime
import hashlib
import json
import random
import re
import uuid

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

RANGE_MSG = ("the data set does not fit in the years 1970..9999: lower count "
             "or max_step, or move newest")
NEWEST_MSG = 'newest must be "now" or an ISO 8601 date-time'
ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$")

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


# One encoder for every dumps(): json.dumps() with these options would build
# a new one for each of the 100,000 numbers of a large reset.
COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value):
    """Compact JSON text (raw UTF-8, key order kept) as bytes."""
    return COMPACT_JSON.encode(value).encode("utf-8", "surrogatepass")


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

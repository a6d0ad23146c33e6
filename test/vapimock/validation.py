# vapimock/validation.py - request validation of the Vapi mock, with the
# messages the real API answers (class-validator style): the list query
# string, the create, update and buy bodies of each provider's DTO, and the
# body of POST /__mock/behaviour.

import re
from urllib.parse import parse_qsl

from .data import MAX_MS, MIN_MS, PROVIDERS, UNKNOWN_PROVIDER, parse_iso

E164_MSG = ("number must be a valid phone number in the E.164 format. "
            "Hot tip, you may be missing the country code (Eg. US: +1).")
PROVIDER_MSG = ("provider must be one of the following values: "
                + ", ".join(PROVIDERS))
E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
ALNUM_RE = re.compile(r"^\+?[a-zA-Z0-9]+$")
NUMBER_RE = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")

DATE_PARAMS = ("createdAtGt", "createdAtLt", "createdAtGe", "createdAtLe",
               "updatedAtGt", "updatedAtLt", "updatedAtGe", "updatedAtLe")
V1_PARAMS = ("limit",) + DATE_PARAMS
V2_PARAMS = ("search", "page", "sortOrder", "sortBy", "limit") + DATE_PARAMS

BOOL_SWITCHES = ("no_v2", "microseconds", "ignore_sort_order",
                 "no_has_next_page", "minimal_metadata", "legacy_secrets")
SWITCHES = ("reject_params", "no_v2", "microseconds", "ignore_sort_order",
            "cap_limit", "no_has_next_page", "minimal_metadata",
            "retention_days", "retention_since", "legacy_secrets", "v1_order",
            "rename_fields")
MAX_RETENTION_DAYS = 365000
RENAME_MSG = ('rename_fields must be an object mapping field names to a new '
              'name, or to "" to drop the field')

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
                _check_filter(errs, fp, flt, "startsWith", "number")
                sw = flt.get("startsWith")
                if type(sw) is not list or \
                        any(type(x) is not str or len(x) > 20 for x in sw):
                    errs.append("%sstartsWith must be an array of strings of "
                                "at most 20 characters" % fp)
            else:
                _check_filter(errs, fp, flt, "oneOf", "call.endedReason")
                one_of = flt.get("oneOf")
                if type(one_of) is not list or \
                        any(x not in ENDED_REASONS for x in one_of):
                    errs.append("%soneOf must be one of the following values: "
                                "%s" % (fp, ", ".join(ENDED_REASONS)))


def _check_filter(errs, fp, flt, ftype, key):
    """The part every hook filter shares: its fields, its type and its key."""
    _whitelist(errs, fp, flt, ("type", "key", ftype))
    if flt.get("type") != ftype:
        errs.append("%stype must be one of the following values: %s"
                    % (fp, ftype))
    if flt.get("key") != key:
        errs.append("%skey must be one of the following values: %s"
                    % (fp, key))


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
        elif name == "rename_fields":
            if type(value) is not dict or \
                    any(not key or type(new_name) is not str
                        for key, new_name in value.items()):
                return None, RENAME_MSG
            changes[name] = dict(value) or None
    return changes, None

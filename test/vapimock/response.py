# vapimock/response.py - the answers of the Vapi mock before they are sent:
# the Response object, and the JSON and NestJS-shaped error answers that
# the routes and the faults build.

import http

from .data import dumps

JSON_CT = "application/json; charset=utf-8"


def phrase(status):
    """The standard reason phrase of an HTTP status code."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


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

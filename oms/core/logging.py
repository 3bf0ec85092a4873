"""Structured logs that carry the order number and the request id.

Services bind the order they work on (`bind_order`); every log line emitted meanwhile, in a web
request or a Celery task, carries `order_number`, so one incident can be followed across systems.
"""

import contextlib
import contextvars
import logging
import uuid

from django.db import connection

_order_number: contextvars.ContextVar[str | None] = contextvars.ContextVar("order_number", default=None)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


@contextlib.contextmanager
def bind_order(number: str | None):
    token = _order_number.set(number)
    try:
        yield
    finally:
        _order_number.reset(token)


def set_order(number: str | None) -> None:
    """Bind for the rest of the current context (a request or a task)."""
    _order_number.set(number)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "order_number"):
            record.order_number = _order_number.get()
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class RequestContextMiddleware:
    """Gives each request an id (or takes the caller's X-Request-ID) and a clean log context."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        request_token = _request_id.set(request_id[:64])
        order_token = _order_number.set(None)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(request_token)
            _order_number.reset(order_token)
        response["X-Request-ID"] = request_id[:64]
        return response


class QueryCountMiddleware:
    """Adds X-Query-Count (SQL statements run by this request). Enabled by OMS_COUNT_QUERIES=1."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = 0

        def counter(execute, sql, params, many, context):
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        response["X-Query-Count"] = str(count)
        return response

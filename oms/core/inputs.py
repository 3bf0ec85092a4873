"""What every piece of outside input passes before it can reach the database.

PostgreSQL refuses the NUL character and unpaired UTF-16 surrogates in `text` and `jsonb`, and
Python's JSON parser recurses once per nesting level: left to the database or the parser, each is a
server error, and for a webhook one bad event that the provider retries forever. These checks find
them in a parsed JSON value, with the dotted path of each (`lines.0.attributes.colour`), so that the
API parser, the order intake and the provider adapters refuse them as field errors in one way.

Dates from outside are bounded too: a year-1 `placed_at` is no order, and far-off dates overflow
time-zone arithmetic (and PostgreSQL's range) further down.
"""

import datetime

from django.utils import timezone

from oms.core.errors import ValidationError

# Deeper than any document the OMS reads (an order is 4 levels; a provider's event rarely 8).
MAX_JSON_DEPTH = 32
NUL_MESSAGE = "Must not contain the NUL character (\\u0000)."
SURROGATE_MESSAGE = "Must be valid Unicode (an unpaired surrogate was sent)."
DEPTH_MESSAGE = f"Nested more than {MAX_JSON_DEPTH} levels deep."

# The window of dates an order can have been placed in, and how far ahead a promise may go.
EARLIEST = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
PLACED_AHEAD = datetime.timedelta(days=1)  # clocks of channels run a little ahead, never by more
PROMISE_AHEAD = datetime.timedelta(days=2 * 366)


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text, or None."""
    if "\x00" in value:
        return NUL_MESSAGE
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def json_problems(value, path: str = "") -> dict[str, list[str]]:
    """Field errors of a parsed JSON value (keys and strings at any depth, and the depth itself).

    Iterative, so that a value nested deeper than Python's recursion limit is reported, not raised.
    """
    problems: dict[str, list[str]] = {}
    stack = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                problems.setdefault(where or "non_field_errors", []).append(problem)
        elif isinstance(item, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                problems.setdefault(where or "non_field_errors", []).append(DEPTH_MESSAGE)
                continue
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                key_text = str(key)
                child_path = f"{where}.{key_text}" if where else key_text
                if isinstance(key, str) and text_problem(key):
                    problems.setdefault(where or "non_field_errors", []).append(f"A key: {text_problem(key)}")
                    continue
                stack.append((child, child_path, depth + 1))
    return problems


def json_clean(value, *, field: str = "", message: str = "The request is not valid."):
    """The value itself when it can be stored, else a ValidationError naming every bad field."""
    problems = json_problems(value, field)
    if problems:
        raise ValidationError(message, code="invalid", fields=problems)
    return value


def datetime_problem(
    value: datetime.datetime,
    *,
    earliest: datetime.datetime = EARLIEST,
    ahead: datetime.timedelta | None = PLACED_AHEAD,
    now: datetime.datetime | None = None,
) -> str | None:
    """Why a date-time from outside is not believable (outside [earliest, now + ahead]), or None."""
    if timezone.is_naive(value):
        return "A date-time with its UTC offset is required."
    if value < earliest:
        return f"Must not be before {earliest:%Y-%m-%d}."
    if ahead is not None:
        latest = (now or timezone.now()) + ahead
        if value > latest:
            return f"Must not be after {latest:%Y-%m-%dT%H:%M}Z."
    return None

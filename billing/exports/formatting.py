"""Small formatting helpers shared by the writers (cached: they run once per cell)."""

import datetime
import functools
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from oms.core.money import minor_unit_exponent

_exponent = functools.lru_cache(maxsize=64)(minor_unit_exponent)


def amount(value: Decimal, currency: str) -> Decimal:
    """Rounded half-up to the currency's minor unit."""
    return value.quantize(_exponent(currency), rounding=ROUND_HALF_UP)


def local_date(value: datetime.datetime) -> datetime.date:
    return timezone.localtime(value).date()


def clean_text(value) -> str:
    """One line of text: tabs and line breaks would break tab-separated and line-based formats."""
    text = "" if value is None else str(value)
    if "\t" in text or "\n" in text or "\r" in text:
        text = " ".join(text.replace("\t", " ").splitlines())
    return text


def batched_text(lines, size: int = 500):
    """Lines joined in batches: fewer, larger chunks for a streamed HTTP response or a file."""
    batch = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)

"""Human numbers: ORD-2026-000123, and later INV-2026-000001.

Two guarantees, two mechanisms:
- `next_unique` (orders): unique and never reused, gaps allowed. On PostgreSQL a sequence per
  series and year, which never blocks concurrent intake. On SQLite (embedded, one writer) a
  counter row.
- `next_gapless` (invoices, credit notes): consecutive with no gap. A counter row locked until the
  caller's transaction commits, so a rolled-back issue gives its number back.
"""

import re

from django.db import IntegrityError, ProgrammingError, connection, transaction

from oms.core.models import NumberSequence

_SERIES_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


def format_number(prefix: str, year: int, value: int, width: int = 6) -> str:
    return f"{prefix}-{year}-{value:0{width}d}"


def _sequence_name(series: str, year: int) -> str:
    if not _SERIES_RE.match(series):
        raise ValueError(f"Bad series name {series!r}")
    return f"oms_seq_{series}_{year}"


def next_unique(series: str, year: int) -> int:
    if connection.vendor != "postgresql":
        return next_gapless(series, year)
    name = _sequence_name(series, year)
    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute("SELECT nextval(%s)", [name])
                return cursor.fetchone()[0]
        except ProgrammingError:
            pass  # first number of this series and year: create its sequence
        try:
            with transaction.atomic():
                cursor.execute(f'CREATE SEQUENCE IF NOT EXISTS "{name}"')
        except (IntegrityError, ProgrammingError):
            # A concurrent transaction created it first (unique violation on the catalog, or
            # "relation already exists" once it committed): it is there now.
            pass
        cursor.execute("SELECT nextval(%s)", [name])
        return cursor.fetchone()[0]


def next_gapless(series: str, year: int) -> int:
    """Must run inside the transaction that uses the number (the lock is released at commit)."""
    if not connection.in_atomic_block:
        raise RuntimeError("next_gapless must run inside the transaction that uses the number")
    NumberSequence.objects.get_or_create(series=series, year=year)
    sequence = NumberSequence.objects.select_for_update().get(series=series, year=year)
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    return sequence.last_value

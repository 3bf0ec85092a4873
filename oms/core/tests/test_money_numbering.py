from decimal import Decimal

import pytest
from django.db import transaction

from oms.core.errors import ValidationError
from oms.core.money import quantize, validate_currency
from oms.core.numbering import format_number, next_gapless, next_unique


def test_rounding_is_half_up_to_the_currency_minor_unit():
    assert quantize(Decimal("0.125"), "EUR") == Decimal("0.13")
    assert quantize(Decimal("0.135"), "EUR") == Decimal("0.14")  # not banker's rounding
    assert quantize(Decimal("100.5"), "JPY") == Decimal("101")
    assert quantize(Decimal("1.2345"), "KWD") == Decimal("1.235")


def test_unknown_currency_is_a_field_error():
    assert validate_currency("chf") == "CHF"
    with pytest.raises(ValidationError) as excinfo:
        validate_currency("XYZ1")
    assert "currency" in excinfo.value.extra["fields"]


def test_number_format():
    assert format_number("ORD", 2026, 123) == "ORD-2026-000123"


@pytest.mark.django_db
def test_unique_numbers_restart_per_year_and_never_repeat():
    first = [next_unique("testseries", 2031) for _ in range(3)]
    other_year = next_unique("testseries", 2032)
    assert first == sorted(first) and len(set(first)) == 3
    assert other_year == 1


@pytest.mark.django_db(transaction=True)
def test_gapless_numbers_give_back_a_rolled_back_number():
    with transaction.atomic():
        assert next_gapless("testinv", 2030) == 1
    try:
        with transaction.atomic():
            assert next_gapless("testinv", 2030) == 2
            raise RuntimeError("issue failed")
    except RuntimeError:
        pass
    with transaction.atomic():
        assert next_gapless("testinv", 2030) == 2


def test_gapless_needs_a_transaction():
    with pytest.raises(RuntimeError):
        next_gapless("testinv", 2030)

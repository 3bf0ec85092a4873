"""What customers read: a translated label for every (status, payment, fulfillment), in English and French."""

import gettext
import itertools
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.translation import override

from orders.choices import (
    CancelReason,
    FulfillmentStatus,
    HoldReason,
    OrderEventType,
    OrderStatus,
    PaymentStatus,
)
from orders.labels import customer_label, order_customer_label
from orders.models import Order

COMBINATIONS = list(
    itertools.product(OrderStatus.values, PaymentStatus.values, FulfillmentStatus.values, [False, True])
)
INTERNAL_WORDS = re.compile(r"review|fraud|fraude|vérif|examen|risk|risque|suspect", re.IGNORECASE)


def label(language: str, status: str, payment: str, fulfillment: str, refund_pending: bool = False) -> str:
    with override(language):
        return str(
            customer_label(
                status=status,
                payment_status=payment,
                fulfillment_status=fulfillment,
                refund_pending=refund_pending,
            )
        )


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_combination_has_a_non_empty_label(language):
    for status, payment, fulfillment, refund_pending in COMBINATIONS:
        text = label(language, status, payment, fulfillment, refund_pending)
        assert text.strip(), (language, status, payment, fulfillment, refund_pending)


def test_every_english_label_is_translated_to_french():
    for status, payment, fulfillment, refund_pending in COMBINATIONS:
        english = label("en", status, payment, fulfillment, refund_pending)
        french = label("fr", status, payment, fulfillment, refund_pending)
        assert french != english, (status, payment, fulfillment, english)


@pytest.mark.parametrize("status", OrderStatus.values)
def test_french_differs_from_english_for_every_status(status):
    english = {label("en", status, p, f) for p, f in itertools.product(PaymentStatus.values, FulfillmentStatus.values)}
    french = {label("fr", status, p, f) for p, f in itertools.product(PaymentStatus.values, FulfillmentStatus.values)}

    assert english.isdisjoint(french), (status, english & french)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_an_order_under_review_never_says_review_or_fraud(language):
    for payment, fulfillment, refund_pending in itertools.product(
        PaymentStatus.values, FulfillmentStatus.values, [False, True]
    ):
        text = label(language, OrderStatus.UNDER_REVIEW, payment, fulfillment, refund_pending)
        assert not INTERNAL_WORDS.search(text), (language, payment, text)
    assert (
        label(language, OrderStatus.UNDER_REVIEW, PaymentStatus.PAID, FulfillmentStatus.UNFULFILLED)
        == {
            "en": "Being processed",
            "fr": "En cours de traitement",
        }[language]
    )


S, P, F = OrderStatus, PaymentStatus, FulfillmentStatus


@pytest.mark.parametrize(
    ("status", "payment", "fulfillment", "refund_pending", "french"),
    [
        (S.SHIPPED, P.PAID, F.SHIPPED, False, "Expédiée"),
        (S.IN_PREPARATION, P.PAID, F.UNFULFILLED, False, "En cours de préparation"),
        (S.CANCELED, P.PAID, F.CANCELED, True, "Annulée — remboursement en cours"),
        (S.CANCELED, P.REFUNDED, F.CANCELED, False, "Annulée — remboursée"),
        (S.CANCELED, P.UNPAID, F.CANCELED, False, "Annulée"),
        (S.CONFIRMED, P.ON_TERMS, F.UNFULFILLED, False, "Confirmée — facture à suivre"),
        (S.SHIPPED, P.PAID, F.PARTIALLY_DELIVERED, False, "Partiellement livrée"),
        (S.DELIVERED, P.PARTIALLY_REFUNDED, F.DELIVERED, False, "Livrée — partiellement remboursée"),
    ],
)
def test_french_wording(status, payment, fulfillment, refund_pending, french):
    assert label("fr", status, payment, fulfillment, refund_pending) == french


def test_order_label_follows_the_order_language():
    order = Order(
        status=OrderStatus.CANCELED,
        payment_status=PaymentStatus.PAID,
        fulfillment_status=FulfillmentStatus.CANCELED,
        amount_paid=10,
        amount_refunded=0,
        locale="fr",
    )

    assert order_customer_label(order) == "Annulée — remboursement en cours"
    assert order_customer_label(order, language="en") == "Canceled — refund in progress"


@pytest.mark.parametrize(
    "choices", [OrderStatus, PaymentStatus, FulfillmentStatus, HoldReason, CancelReason, OrderEventType]
)
def test_every_choice_label_is_translated_to_french(choices):
    for value in choices:
        with override("en"):
            english = str(value.label)
        with override("fr"):
            french = str(value.label)
        assert french and french != english, (choices.__name__, value, english)


def test_the_committed_compiled_catalog_matches_the_po_file():
    """The .mo is committed (not every machine has gettext): it must be recompiled with every .po change."""
    locale_dir = Path(settings.BASE_DIR) / "locale" / "fr" / "LC_MESSAGES"
    po = (locale_dir / "django.po").read_text(encoding="utf-8")
    with open(locale_dir / "django.mo", "rb") as mo:
        catalog = gettext.GNUTranslations(mo)
    # Single-line entries are enough to notice a stale catalog.
    entries = re.findall(r'^(?:msgctxt "(.+)"\n)?msgid "(.+)"\nmsgstr "(.+)"$', po, flags=re.MULTILINE)

    assert len(entries) > 100

    def compiled(context: str, msgid: str) -> str:
        msgid = _unescape(msgid)
        return catalog.pgettext(_unescape(context), msgid) if context else catalog.gettext(msgid)

    stale = [(msgid, msgstr) for context, msgid, msgstr in entries if compiled(context, msgid) != _unescape(msgstr)]
    assert stale == []


def _unescape(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\")

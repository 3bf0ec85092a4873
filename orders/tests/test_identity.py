"""Duplicate customers found by phone or address and merged with their orders, audited."""

from decimal import Decimal

import pytest

from billing.models import BillingPolicy, StoreCreditEntry
from billing.services.credits import store_credit_add, store_credit_balance, voucher_issue
from oms.cockpit import roles
from oms.core.actors import get_system_user
from oms.core.errors import ConflictError, PermissionDeniedError, ValidationError
from orders.choices import OrderEventType
from orders.identity import (
    address_key,
    customer_duplicate_groups,
    customer_keys,
    customer_keys_refresh,
    customer_merge,
    phone_key,
)
from orders.models import Customer, Order, OrderEvent, Tag
from orders.tests.factories import make_user

pytestmark = pytest.mark.django_db

PARIS = {"name": "Ann Lee", "line1": "12, Av. de l'Opéra", "postal_code": "75001", "city": "Paris", "country": "FR"}
PARIS_AGAIN = {
    "name": "A. Lee",
    "line1": "12 avenue de l Opera",
    "postal_code": "75 001",
    "city": "PARIS",
    "country": "fr",
}
LYON = {"name": "Bob", "line1": "3 quai Saint-Antoine", "postal_code": "69002", "city": "Lyon", "country": "FR"}


@pytest.mark.parametrize(
    "raw, country, key",
    [
        ("06 12 34 56 78", "FR", "33612345678"),
        ("+33 6 12 34 56 78", "", "33612345678"),
        ("+33 (0)6 12 34 56 78", "", "33612345678"),
        ("0033 6 12 34 56 78", "", "33612345678"),
        ("06.12.34.56.78", "", "33612345678"),  # a national number: the shop's country
        ("0470 12 34 56", "BE", "32470123456"),
        ("06 1234 5678", "IT", "390612345678"),
        ("12", "FR", ""),
        ("", "FR", ""),
    ],
)
def test_phone_keys_are_the_digits_in_international_form(raw, country, key):
    assert phone_key(raw, country=country) == key


def test_address_keys_ignore_case_accents_punctuation_and_abbreviations():
    assert address_key(PARIS) == address_key(PARIS_AGAIN) == "12 avenue de l opera|75001|fr"
    assert address_key(LYON) != address_key(PARIS)
    assert address_key({"line1": "", "country": "FR"}) == "" and address_key(None) == ""


def new_customer(make_order, email, *, phone="", address=PARIS, is_test=False):
    order = make_order(customer={"email": email, "phone": phone}, billing_address=address, is_test=is_test)
    customer_keys_refresh(customer=order.customer, address=order.shipping_address)
    return Customer.objects.get(pk=order.customer_id)


def test_keys_are_refreshed_with_a_history_row_and_not_rewritten_when_unchanged(make_order):
    order = make_order(customer={"email": "ann@example.com", "phone": "06 12 34 56 78"}, billing_address=PARIS)
    ann = customer_keys_refresh(customer=order.customer, address=order.shipping_address)
    assert (ann.phone_key, ann.address_key) == customer_keys(ann, PARIS) == ("33612345678", address_key(PARIS))
    rows = ann.history.count()
    agent = make_user(roles.SUPPORT_L2)

    customer_keys_refresh(customer=ann, address=LYON, actor=agent, reason="Moved to Lyon")

    ann.refresh_from_db()
    assert (ann.phone_key, ann.address_key) == ("33612345678", address_key(LYON))
    assert ann.history.count() == rows + 1
    latest = ann.history.latest()
    assert (latest.history_user, latest.history_change_reason) == (agent, "Moved to Lyon")
    customer_keys_refresh(customer=ann, address={**LYON, "name": "Ann L."}, actor=agent)
    customer_keys_refresh(customer=ann, actor=agent)  # no address: the address key is kept
    ann.refresh_from_db()
    assert ann.history.count() == rows + 1 and ann.address_key == address_key(LYON)


def test_duplicates_are_found_by_phone_and_by_address_leaving_merged_records_out(make_order):
    ann = new_customer(make_order, "ann@example.com", phone="06 12 34 56 78", address=PARIS)
    ann_work = new_customer(make_order, "ann@work.example", phone="+33 6 12 34 56 78", address=LYON)
    ann_old = new_customer(make_order, "ann.lee@example.com", address=PARIS_AGAIN)
    new_customer(make_order, "bob@example.com", phone="07 00 00 00 01", address={**LYON, "line1": "9 rue Neuve"})
    merged = new_customer(make_order, "old@example.com", phone="0612345678", address=LYON)
    customer_merge(keep=ann, merge=[merged], actor=make_user(roles.SUPPORT_L2), reason="Same person")

    groups = customer_duplicate_groups()

    assert [(g["reason"], g["key"], [c.email for c in g["customers"]]) for g in groups] == [
        ("phone", "33612345678", [ann.email, ann_work.email]),
        ("address", address_key(PARIS), [ann.email, ann_old.email]),
    ]
    assert customer_duplicate_groups(limit=1) == groups[:1]


def test_test_and_real_customers_are_never_grouped(make_order):
    new_customer(make_order, "ann@example.com", phone="06 12 34 56 78")
    tester = new_customer(make_order, "ann@test.example", phone="06 12 34 56 78", is_test=True)
    assert tester.is_test
    assert [g for g in customer_duplicate_groups() if g["reason"] == "phone"] == []


def test_a_merge_moves_the_orders_with_history_and_events_and_marks_the_record_merged(make_order):
    keep = new_customer(make_order, "ann@example.com", address=PARIS)
    dup = new_customer(make_order, "ann@work.example", phone="06 12 34 56 78", address=PARIS_AGAIN)
    second = make_order(customer={"email": "ann@work.example"}, billing_address=PARIS)
    vip = Tag.objects.create(name="vip")
    dup.tags.add(vip)
    moved = list(Order.objects.filter(customer=dup).order_by("pk"))
    assert len(moved) == 2 and second in moved
    kept_order = Order.objects.get(customer=keep)
    agent = make_user(roles.SUPPORT_L2, username="support2")

    result = customer_merge(keep=keep, merge=[dup], actor=agent, reason="Same phone and address, confirmed by phone")

    assert result == keep
    for order in moved:
        order.refresh_from_db()
        assert order.customer_id == keep.pk
        latest = order.history.latest()
        assert latest.customer_id == keep.pk and latest.history_user == agent
        assert "confirmed by phone" in latest.history_change_reason
        event = OrderEvent.objects.get(order=order, type=OrderEventType.CUSTOMER_MERGED)
        assert (event.actor, event.reason) == (agent, "Same phone and address, confirmed by phone")
        assert event.payload == {"from": "ann@work.example", "into": "ann@example.com"}
    assert not OrderEvent.objects.filter(order=kept_order, type=OrderEventType.CUSTOMER_MERGED).exists()
    dup.refresh_from_db()
    keep.refresh_from_db()
    assert dup.merged_into == keep and dup.merged_at is not None
    assert dup.history.latest().history_user == agent
    assert (keep.phone, keep.phone_key) == ("06 12 34 56 78", "33612345678")  # filled from the duplicate
    assert keep.history.latest().history_user == agent
    assert list(keep.tags.all()) == [vip]
    assert customer_duplicate_groups() == []


def test_support_level_1_cannot_merge_and_nothing_changes(make_order):
    keep = new_customer(make_order, "ann@example.com")
    dup = new_customer(make_order, "ann@work.example")
    with pytest.raises(PermissionDeniedError) as refused:
        customer_merge(keep=keep, merge=[dup], actor=make_user(roles.SUPPORT_L1), reason="Same person")
    assert refused.value.code == "merge_customer_forbidden"
    dup.refresh_from_db()
    assert dup.merged_into is None and Order.objects.filter(customer=dup).count() == 1
    assert not OrderEvent.objects.filter(type=OrderEventType.CUSTOMER_MERGED).exists()


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_merge_needs_a_reason(make_order, reason):
    keep = new_customer(make_order, "ann@example.com")
    dup = new_customer(make_order, "ann@work.example")
    with pytest.raises(ValidationError) as refused:
        customer_merge(keep=keep, merge=[dup], actor=make_user(roles.SUPPORT_L2), reason=reason)
    assert "reason" in refused.value.extra["fields"]
    dup.refresh_from_db()
    assert dup.merged_into is None


def test_no_merge_into_a_merged_record_into_itself_or_across_test_and_real(make_order):
    agent = make_user(roles.SUPPORT_L2)
    ann = new_customer(make_order, "ann@example.com")
    old = new_customer(make_order, "old@example.com")
    other = new_customer(make_order, "ann@work.example")
    tester = new_customer(make_order, "ann@test.example", is_test=True)
    customer_merge(keep=ann, merge=[old], actor=agent, reason="Same person")

    with pytest.raises(ConflictError) as into_merged:
        customer_merge(keep=old, merge=[other], actor=agent, reason="Same person")
    assert into_merged.value.code == "merge_into_merged"
    with pytest.raises(ConflictError) as again:
        customer_merge(keep=other, merge=[old], actor=agent, reason="Same person")
    assert again.value.code == "customer_already_merged"
    with pytest.raises(ValidationError) as itself:
        customer_merge(keep=ann, merge=[ann], actor=agent, reason="Same person")
    assert itself.value.code == "merge_into_self"
    with pytest.raises(ConflictError) as mixed:
        customer_merge(keep=ann, merge=[tester], actor=agent, reason="Same person")
    assert mixed.value.code == "merge_test_mismatch"
    other.refresh_from_db()
    tester.refresh_from_db()
    assert other.merged_into is None and tester.merged_into is None
    assert Order.objects.filter(customer=other).count() == 1


def test_records_merged_earlier_follow_their_record_into_the_new_one(make_order):
    agent = make_user(roles.SUPPORT_L2)
    ann = new_customer(make_order, "ann@example.com")
    old = new_customer(make_order, "old@example.com")
    work = new_customer(make_order, "ann@work.example")
    customer_merge(keep=ann, merge=[old], actor=agent, reason="Same person")

    customer_merge(keep=work, merge=[ann], actor=agent, reason="Same person, work address")

    old.refresh_from_db()
    ann.refresh_from_db()
    assert old.merged_into == work and ann.merged_into == work
    assert old.history.latest().history_user == agent
    assert Order.objects.filter(customer=work).count() == 3


def test_an_order_from_a_merged_e_mail_goes_to_the_kept_record(make_order):
    keep = new_customer(make_order, "ann@example.com", address=PARIS)
    dup = new_customer(make_order, "ann@work.example", phone="06 12 34 56 78", address=PARIS_AGAIN)
    customer_merge(keep=keep, merge=[dup], actor=make_user(roles.SUPPORT_L2), reason="Same person")

    later = make_order(customer={"email": "ann@work.example"}, billing_address=PARIS)

    assert later.customer == keep
    assert later.email == "ann@work.example"  # the order keeps the address the customer gave
    assert not Order.objects.filter(customer=dup).exists()


def test_store_credit_vouchers_and_the_billing_policy_follow_the_merge(make_order):
    system = get_system_user()
    keep = new_customer(make_order, "ann@example.com", address=PARIS)
    dup = new_customer(make_order, "ann@work.example", phone="06 12 34 56 78", address=PARIS_AGAIN)
    store_credit_add(customer=keep, currency="EUR", amount="5.00", actor=system)
    store_credit_add(customer=dup, currency="EUR", amount="12.50", actor=system)
    voucher = voucher_issue(customer=dup, currency="EUR", amount="20.00", actor=system)
    policy = BillingPolicy.objects.create(customer=dup)
    entries_before = StoreCreditEntry.objects.count()

    customer_merge(keep=keep, merge=[dup], actor=make_user(roles.SUPPORT_L2), reason="Same person")

    # The ledger is appended to, never rewritten: one entry out of the merged record, one in.
    assert StoreCreditEntry.objects.count() == entries_before + 2
    assert (store_credit_balance(keep, "EUR"), store_credit_balance(dup, "EUR")) == (Decimal("17.50"), Decimal("0"))
    voucher.refresh_from_db()
    policy.refresh_from_db()
    assert (voucher.customer, policy.customer) == (keep, keep)
    assert voucher.history.latest().history_change_reason == "Customer merged: Same person"

"""Customer identity: duplicate records found by phone or address, and merged with their orders.

One customer per email address is enforced by the database (case-insensitive unique), so two
records of one person differ by email: what they share is a phone number or a postal address.
`customer_keys` reduces both to comparable keys, stored on the customer (`phone_key`,
`address_key`, indexed), and `customer_duplicate_groups` lists the customers that share one.

Email is not a duplicate reason here: the unique constraint on the lowercased email (and intake
stripping and lowercasing it) leaves no two records whose emails differ only by case or blanks.

Lock order for a merge: customers (by id), then their orders (by id), then their cases (by id),
then what the apps above keep per customer (orders.hooks.CUSTOMER_MERGED: billing's store credit,
vouchers and policy, returns' requests); intake takes a customer's row before inserting its order,
in the same order.
"""

import re
import unicodedata
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from oms.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from oms.core.history import stamp
from orders.addresses import normalize_address
from orders.choices import OrderEventType
from orders.events import events_record
from orders.hooks import CUSTOMER_MERGED
from orders.models import Case, Customer, Order

MERGE_PERMISSION = "orders.merge_customer"
# Country assumed for a national number (leading trunk 0) when the address gives none.
DEFAULT_PHONE_COUNTRY = "FR"
# Country calling codes of the countries the shop ships to most (ITU E.164).
CALLING_CODES = {
    "FR": "33", "BE": "32", "CH": "41", "LU": "352", "MC": "377", "DE": "49", "AT": "43", "NL": "31",
    "ES": "34", "PT": "351", "IT": "39", "GB": "44", "IE": "353", "DK": "45", "SE": "46", "NO": "47",
    "FI": "358", "PL": "48", "CZ": "420", "GR": "30", "US": "1", "CA": "1",
    # French overseas departments have their own calling codes.
    "GP": "590", "MQ": "596", "GF": "594", "RE": "262", "YT": "262", "PM": "508",
}  # fmt: skip
# Italy keeps the leading 0 of landlines after the country code.
KEEPS_TRUNK_ZERO = {"IT"}
MIN_PHONE_DIGITS = 8
# Street words written several ways (French and English), reduced to one spelling.
STREET_WORDS = {
    "av": "avenue", "ave": "avenue", "bd": "boulevard", "bld": "boulevard", "blvd": "boulevard",
    "boul": "boulevard", "fbg": "faubourg", "pl": "place", "rte": "route", "chem": "chemin",
    "imp": "impasse", "st": "saint", "ste": "sainte", "str": "strasse", "rd": "road",
}  # fmt: skip


def phone_key(raw: str, *, country: str = "") -> str:
    """Digits of the number in international form, without the "+": "06 12 34 56 78" in France and
    "+33 6 12 34 56 78" are both "33612345678". "" when there is no usable number."""
    raw = (raw or "").strip()
    digits = re.sub(r"\D", "", raw)
    if not digits:
        return ""
    if raw.startswith("+"):
        international = digits
    elif digits.startswith("00"):
        international = digits[2:]
    else:
        country = (country or DEFAULT_PHONE_COUNTRY).upper()
        code = CALLING_CODES.get(country)
        if code is None:
            international = digits
        elif digits.startswith("0"):
            international = code + (digits if country in KEEPS_TRUNK_ZERO else digits[1:])
        elif digits.startswith(code) and len(digits) > 10:
            international = digits  # written internationally without the "+"
        else:
            international = code + digits
    # "+33 (0)6 …": the trunk 0 written in parentheses after the country code.
    if "(0)" in raw.replace(" ", ""):
        for code in sorted(set(CALLING_CODES.values()), key=len, reverse=True):
            if international.startswith(code + "0"):
                international = code + international[len(code) + 1 :]
                break
    return international if len(international) >= MIN_PHONE_DIGITS else ""


def _plain(text: str) -> str:
    """Lowercased, accents and punctuation dropped, one space between words."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = re.sub(r"[^0-9a-z]+", " ", ascii_text.casefold()).split()
    return " ".join(STREET_WORDS.get(word, word) for word in words)


def address_key(address: dict | None) -> str:
    """Street, postcode and country, normalized: "12, Av. de l'Opéra" and "12 avenue de l Opera"
    at 75001 FR are one key. "" without a street or a country."""
    if not isinstance(address, dict):
        return ""
    clean = normalize_address(address)
    street = _plain(clean["line1"])
    postcode = re.sub(r"[^0-9a-z]", "", _plain(clean["postal_code"]))
    country = clean["country"].lower()
    if not street or not country:
        return ""
    return f"{street}|{postcode}|{country}"[:200]


def customer_keys(customer: Customer, address: dict | None) -> tuple[str, str]:
    """(phone_key, address_key) of a customer whose last shipping address is `address`.

    The phone is the customer's, else the address's; a national number is read in the address's
    country (else DEFAULT_PHONE_COUNTRY)."""
    address = address if isinstance(address, dict) else {}
    country = str(address.get("country") or "").strip().upper()
    phone = customer.phone or str(address.get("phone") or "")
    return phone_key(phone, country=country), address_key(address)


def customer_keys_refresh(*, customer: Customer, address: dict | None = None, actor=None, reason: str = "") -> Customer:
    """Store the customer's duplicate keys (a history row when they change; no write otherwise).

    Without an address, the address key is kept and only the phone key is recomputed."""
    new_phone, new_address = customer_keys(customer, address)
    if address is None:
        new_address = customer.address_key
    if (new_phone, new_address) == (customer.phone_key, customer.address_key):
        return customer
    customer.phone_key, customer.address_key = new_phone, new_address
    stamp(customer, actor=actor, reason=reason or "Duplicate keys updated")
    customer.save(update_fields=["phone_key", "address_key"])
    return customer


def customer_duplicate_groups(*, limit: int = 50) -> list[dict]:
    """Customers sharing a phone key or an address key: [{"reason", "key", "customers"}].

    Merged records and empty keys are left out; test and real customers are never grouped together
    (they cannot be merged). Phone groups first, then address groups, each by key. Four queries."""
    live = Customer.objects.filter(merged_into__isnull=True)
    groups: list[dict] = []
    for reason, field in (("phone", "phone_key"), ("address", "address_key")):
        room = limit - len(groups)
        if room <= 0:
            break
        shared = list(
            live.exclude(**{field: ""})
            .values(field, "is_test")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
            .order_by(field, "is_test")
            .values_list(field, "is_test")[:room]
        )
        if not shared:
            continue
        members: dict[tuple[str, bool], list[Customer]] = {key: [] for key in shared}
        customers = live.filter(**{f"{field}__in": {key for key, _test in shared}}).order_by("pk")
        for customer in customers:
            bucket = members.get((getattr(customer, field), customer.is_test))
            if bucket is not None:
                bucket.append(customer)
        groups.extend({"reason": reason, "key": key, "customers": members[(key, is_test)]} for key, is_test in shared)
    return groups


def _ids(records: Iterable) -> list[int]:
    ids = []
    for record in records:
        pk = record.pk if isinstance(record, Customer) else record
        try:
            ids.append(int(pk))
        except (TypeError, ValueError):
            raise ValidationError("Not a customer.", fields={"merge": [f"{pk!r} is not a customer id."]}) from None
    return ids


@transaction.atomic
def customer_merge(*, keep, merge: list, actor, reason: str) -> Customer:
    """Merge duplicate records into `keep`: their orders (and cases) move to it, its empty name and
    phone are filled from them, and each merged record points to `keep` (kept, never deleted).

    Every moved order gets a history row and a `customer_merged` event on its timeline."""
    if actor is None or not actor.has_perm(MERGE_PERMISSION):
        raise PermissionDeniedError("You are not allowed to merge customer records.", code="merge_customer_forbidden")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            "Say why these records are one customer.", code="reason_required", fields={"reason": ["Required."]}
        )
    [keep_id] = _ids([keep])
    merge_ids = list(dict.fromkeys(_ids(merge or [])))
    if not merge_ids:
        raise ValidationError("Choose the records to merge.", code="nothing_to_merge", fields={"merge": ["Required."]})
    if keep_id in merge_ids:
        raise ValidationError(
            "A customer cannot be merged into itself.",
            code="merge_into_self",
            fields={"merge": ["Remove the kept record."]},
        )
    # Lock order: customers by id (those merged earlier into the ones merged now included).
    rows = list(
        Customer.objects.select_for_update()
        .filter(Q(pk__in=[keep_id, *merge_ids]) | Q(merged_into_id__in=merge_ids))
        .order_by("pk")
    )
    locked = {customer.pk: customer for customer in rows if customer.pk in {keep_id, *merge_ids}}
    earlier = [customer for customer in rows if customer.pk not in locked]
    missing = [pk for pk in [keep_id, *merge_ids] if pk not in locked]
    if missing:
        raise NotFoundError("Customer not found.", code="customer_not_found", extra={"ids": missing})
    keep = locked[keep_id]
    merged = [locked[pk] for pk in merge_ids]
    if keep.merged_into_id:
        raise ConflictError(
            f"{keep.email} was merged into another record: merge into that one.",
            code="merge_into_merged",
            extra={"customer": keep.pk, "merged_into": keep.merged_into_id},
        )
    already = [customer.email for customer in merged if customer.merged_into_id]
    if already:
        raise ConflictError(
            f"Already merged: {', '.join(already)}.", code="customer_already_merged", extra={"emails": already}
        )
    mixed = [customer.email for customer in merged if customer.is_test != keep.is_test]
    if mixed:
        raise ConflictError(
            "Test and real customers cannot be merged.", code="merge_test_mismatch", extra={"emails": mixed}
        )

    by_id = {customer.pk: customer for customer in merged}
    orders = list(
        Order.objects.select_for_update(of=("self",))
        .select_related("channel")
        .filter(customer_id__in=merge_ids)
        .order_by("pk")
    )
    moved_from = {}
    for order in orders:
        moved_from[order.pk] = by_id[order.customer_id]
        order.customer = keep
    if orders:
        bulk_update_with_history(
            orders, Order, ["customer"], default_user=actor, default_change_reason=f"Customer merged: {reason}"
        )
    cases = list(Case.objects.select_for_update().filter(customer_id__in=merge_ids).order_by("pk"))
    for case in cases:
        case.customer = keep
    if cases:
        bulk_update_with_history(
            cases, Case, ["customer"], default_user=actor, default_change_reason=f"Customer merged: {reason}"
        )

    # What other apps keep per customer follows too: store credit (moved by ledger entries),
    # vouchers, the billing policy, the returns.
    CUSTOMER_MERGED.emit(keep=keep, merged=merged, actor=actor, reason=reason)

    tags = {tag.pk: tag for customer in merged for tag in customer.tags.all()}
    if tags:
        keep.tags.add(*tags.values())
    filled = []
    for field in ("first_name", "last_name", "phone", "company_name"):
        source = next((c for c in merged if getattr(c, field)), None)
        if not getattr(keep, field) and source is not None:
            setattr(keep, field, getattr(source, field))
            filled.append(field)
            if field == "phone" and not keep.phone_key:
                keep.phone_key = source.phone_key or phone_key(source.phone)
                filled.append("phone_key")
    if filled:
        stamp(keep, actor=actor, reason=f"Merged {', '.join(c.email for c in merged)}: {reason}")
        keep.save(update_fields=filled)

    now = timezone.now()
    for customer in merged:
        customer.merged_into = keep
        customer.merged_at = now
        stamp(customer, actor=actor, reason=f"Merged into {keep.email}: {reason}")
        customer.save(update_fields=["merged_into", "merged_at"])
    # Records merged earlier into the ones merged now point to `keep` too: no chains to follow.
    for customer in earlier:
        stamp(customer, actor=actor, reason=f"Merged into {keep.email} with the record it was merged into: {reason}")
        customer.merged_into = keep
        customer.save(update_fields=["merged_into"])

    for order in orders:
        events_record(
            order=order,
            actor=actor,
            events=[(OrderEventType.CUSTOMER_MERGED, reason, {"from": moved_from[order.pk].email, "into": keep.email})],
        )
    return keep

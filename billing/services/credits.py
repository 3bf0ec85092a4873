"""Store credit and vouchers: ledgers whose balance is the sum of their entries.

Credit is given by processed refunds (`store_credit_add`, `voucher_issue`, called by
`refunds.refund_process`) and spent on later orders through the intake (`intake_payment_debit`,
called by `orders.services.order_create` when the payment's method is store_credit or voucher).
A debit locks what it spends from first (the customer row for store credit, the voucher row for a
voucher), so two orders spending the same balance at the same moment cannot both take it.
"""

import datetime
import secrets
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from billing.models import BillingPolicy, Refund, StoreCreditEntry, Voucher, VoucherEntry
from oms.core.errors import NotFoundError, ValidationError
from oms.core.history import stamp
from oms.core.money import ZERO, quantize
from oms.core.permissions import require_perm
from orders.models import Customer, Order

STORE_CREDIT = "store_credit"
VOUCHER = "voucher"
INTAKE_METHODS = (STORE_CREDIT, VOUCHER)
# No 0/O, 1/I/L: codes are read out over the phone.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def _positive(amount, currency: str, field: str = "amount") -> Decimal:
    value = quantize(Decimal(amount), currency)
    if value <= 0:
        raise ValidationError("The amount must be greater than 0.", fields={field: ["Must be greater than 0."]})
    return value


# --- store credit ------------------------------------------------------------------------------


def store_credit_balance(customer: Customer | int, currency: str) -> Decimal:
    customer_id = customer.pk if isinstance(customer, Customer) else customer
    total = StoreCreditEntry.objects.filter(customer_id=customer_id, currency=currency).aggregate(t=Sum("amount"))["t"]
    return quantize(total or ZERO, currency)


def store_credit_add(
    *,
    customer: Customer,
    currency: str,
    amount,
    actor,
    refund: Refund | None = None,
    order: Order | None = None,
    note="",
) -> StoreCreditEntry:
    """A credit given (a processed refund; the refund service checked its approval)."""
    entry = StoreCreditEntry(
        customer=customer,
        currency=currency,
        amount=_positive(amount, currency),
        refund=refund,
        order=order,
        note=(note or (f"Refund {refund.number}" if refund else ""))[:255],
        actor=actor,
    )
    entry.full_clean()
    entry.save(force_insert=True)
    return entry


@transaction.atomic
def store_credit_use(
    *, customer: Customer | int, currency: str, amount, order: Order, actor, note: str = ""
) -> StoreCreditEntry:
    """Spend store credit on an order (the right to place the order is the right to spend it)."""
    require_perm(actor, "orders.import_order", "pay orders with store credit")
    customer_id = customer.pk if isinstance(customer, Customer) else customer
    value = _positive(amount, currency, "payment.amount")
    # The customer row serializes spending of one customer's balance.
    Customer.objects.select_for_update().filter(pk=customer_id).values_list("pk").first()
    balance = store_credit_balance(customer_id, currency)
    if balance < value:
        raise ValidationError(
            f"The store credit balance is {balance} {currency}: not enough for {value} {currency}.",
            code="store_credit_insufficient",
            fields={"payment.amount": [f"Store credit available: {balance} {currency}."]},
        )
    return StoreCreditEntry.objects.create(
        customer_id=customer_id,
        currency=currency,
        amount=-value,
        order=order,
        note=(note or f"Order {order.number}")[:255],
        actor=actor,
    )


# --- vouchers ----------------------------------------------------------------------------------


def voucher_balance(voucher: Voucher | int) -> Decimal:
    voucher_id = voucher.pk if isinstance(voucher, Voucher) else voucher
    return VoucherEntry.objects.filter(voucher_id=voucher_id).aggregate(t=Sum("amount"))["t"] or ZERO


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"V-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def voucher_issue(
    *,
    customer: Customer | None,
    currency: str,
    amount,
    actor,
    refund: Refund | None = None,
    order: Order | None = None,
    expires_at: datetime.datetime | None = None,
    note: str = "",
) -> Voucher:
    """A new voucher with a generated code and its first (+) entry."""
    value = _positive(amount, currency)
    if expires_at is None:
        expires_at = timezone.now() + datetime.timedelta(days=settings.OMS_VOUCHER_VALID_DAYS)
    code = _new_code()
    while Voucher.objects.filter(code=code).exists():  # 31^12 codes: practically never loops
        code = _new_code()
    voucher = Voucher(code=code, customer=customer, currency=currency, expires_at=expires_at, refund=refund)
    stamp(voucher, actor=actor, reason=note or (f"Refund {refund.number}" if refund else "Issued"))
    voucher.save(force_insert=True)
    VoucherEntry.objects.create(
        voucher=voucher,
        amount=value,
        order=order,
        note=(note or (f"Refund {refund.number}" if refund else "Issued"))[:255],
        actor=actor,
    )
    return voucher


@transaction.atomic
def voucher_redeem(
    *, code: str, amount, order: Order, actor, customer: Customer | None = None, field: str = "payment.code"
) -> VoucherEntry:
    """Spend (part of) a voucher on an order: its currency, owner and expiry are checked."""
    require_perm(actor, "orders.import_order", "pay orders with a voucher")
    code = (code or "").strip().upper()
    voucher = Voucher.objects.select_for_update().filter(code=code).first() if code else None
    if voucher is None:
        raise ValidationError("Unknown voucher code.", code="voucher_not_found", fields={field: ["Unknown code."]})
    customer = customer or order.customer
    problem = ""
    if voucher.currency != order.currency:
        problem = f"This voucher is in {voucher.currency}, the order in {order.currency}."
    elif voucher.customer_id and voucher.customer_id != customer.pk:
        problem = "This voucher belongs to another customer."
    elif voucher.expires_at and voucher.expires_at <= timezone.now():
        problem = "This voucher has expired."
    if problem:
        raise ValidationError(problem, code="voucher_not_usable", fields={field: [problem]})
    value = _positive(amount, order.currency, "payment.amount")
    balance = quantize(voucher_balance(voucher), voucher.currency)
    if balance < value:
        raise ValidationError(
            f"Voucher {voucher.code} has {balance} {voucher.currency} left: not enough for {value}.",
            code="voucher_insufficient",
            fields={"payment.amount": [f"Voucher balance: {balance} {voucher.currency}."]},
        )
    return VoucherEntry.objects.create(
        voucher=voucher, amount=-value, order=order, note=f"Order {order.number}"[:255], actor=actor
    )


def voucher_get(code: str) -> Voucher:
    voucher = Voucher.objects.filter(code=(code or "").strip().upper()).first()
    if voucher is None:
        raise NotFoundError("Voucher not found.", code="voucher_not_found")
    return voucher


# --- intake ------------------------------------------------------------------------------------


def intake_payment_debit(*, order: Order, actor, payment: dict, amount: Decimal) -> None:
    """order_create's payment by store credit or voucher: the ledger is debited in the order's
    transaction, or the order is refused with a field error (nothing is kept)."""
    method = payment.get("method")
    if method not in INTAKE_METHODS or amount <= 0:
        return
    if payment.get("status", "unpaid") != "paid":
        raise ValidationError(
            "The order is not valid.",
            code="invalid_order",
            fields={"payment.status": ["Store credit and vouchers pay at once: use status paid."]},
        )
    if method == STORE_CREDIT:
        store_credit_use(customer=order.customer, currency=order.currency, amount=amount, order=order, actor=actor)
    else:
        # The intake API's payment has no `code` field: the voucher code travels as the reference.
        code = payment.get("code") or payment.get("reference")
        voucher_redeem(code=code, amount=amount, order=order, actor=actor, field="payment.reference")


@transaction.atomic
def credits_merge_customers(*, keep: Customer, merged: list[Customer], actor, reason: str) -> dict:
    """Called by orders.identity.customer_merge (which checked the permission and locked the
    customers): each merged record's store-credit balance moves to `keep` as a pair of ledger
    entries (the ledger is never rewritten), its vouchers and, when `keep` has none, its billing
    policy follow it. Returns what moved."""
    moved = {"store_credit": [], "vouchers": [], "billing_policy": None}
    note = f"Customer merged: {reason}"[:255]
    for customer in merged:
        balances = (
            StoreCreditEntry.objects.filter(customer=customer)
            .values_list("currency")
            .annotate(total=Sum("amount"))
            .order_by("currency")
        )
        for currency, total in balances:
            amount = quantize(total or ZERO, currency)
            if amount == 0:
                continue
            StoreCreditEntry.objects.create(
                customer=customer, currency=currency, amount=-amount, note=f"To {keep.email}. {note}"[:255], actor=actor
            )
            StoreCreditEntry.objects.create(
                customer=keep,
                currency=currency,
                amount=amount,
                note=f"From {customer.email}. {note}"[:255],
                actor=actor,
            )
            moved["store_credit"].append({"from": customer.email, "currency": currency, "amount": str(amount)})
    vouchers = list(Voucher.objects.select_for_update().filter(customer__in=merged).order_by("pk"))
    for voucher in vouchers:
        voucher.customer = keep
    if vouchers:
        bulk_update_with_history(vouchers, Voucher, ["customer"], default_user=actor, default_change_reason=note)
        moved["vouchers"] = [voucher.code for voucher in vouchers]
    if not BillingPolicy.objects.filter(customer=keep).exists():
        policy = BillingPolicy.objects.select_for_update().filter(customer__in=merged).order_by("pk").first()
        if policy is not None:
            policy.customer = keep
            stamp(policy, actor=actor, reason=note)
            policy.save(update_fields=["customer"])
            moved["billing_policy"] = policy.pk
    return moved

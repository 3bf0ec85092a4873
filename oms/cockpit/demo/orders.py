"""The plan of demo orders: how many end in each status, each created through `orders.services` and
driven there step by step, each step by the role that does it."""

import datetime
from decimal import Decimal

from oms.cockpit.demo.catalog import PRODUCTS
from oms.cockpit.demo.context import SEED, Demo
from oms.cockpit.demo.customers import DemoCustomer
from oms.cockpit.demo.parcels import order_ship, promised_supply_receive
from orders import services
from orders.choices import CancelReason, HoldReason, OrderStatus
from orders.models import Order

B2C_CHANNELS = [("web", 40), ("app", 15), ("amazon-fr", 15), ("store-lyon", 8), ("phone", 12), ("instagram-live", 10)]
RATES = {"EUR": Decimal("1"), "GBP": Decimal("0.86"), "USD": Decimal("1.08"), "CHF": Decimal("0.95")}

# How many demo orders end in each status (242 in all).
PLAN = {
    OrderStatus.DRAFT: 10,
    OrderStatus.PENDING_APPROVAL: 10,
    OrderStatus.AWAITING_PAYMENT: 25,
    OrderStatus.UNDER_REVIEW: 12,
    OrderStatus.CONFIRMED: 30,
    OrderStatus.IN_PREPARATION: 25,
    OrderStatus.PARTIALLY_SHIPPED: 15,
    OrderStatus.SHIPPED: 30,
    OrderStatus.DELIVERED: 30,
    OrderStatus.COMPLETED: 30,
    OrderStatus.CANCELED: 25,
}
# Placed this many days ago (min, max): the further along, the older.
AGE_DAYS = {
    OrderStatus.DRAFT: (0, 3),
    OrderStatus.PENDING_APPROVAL: (0, 7),
    OrderStatus.AWAITING_PAYMENT: (0, 10),
    OrderStatus.UNDER_REVIEW: (0, 5),
    OrderStatus.CONFIRMED: (0, 5),
    OrderStatus.IN_PREPARATION: (1, 7),
    OrderStatus.PARTIALLY_SHIPPED: (2, 15),
    OrderStatus.SHIPPED: (3, 20),
    OrderStatus.DELIVERED: (15, 45),
    OrderStatus.COMPLETED: (30, 60),
    OrderStatus.CANCELED: (0, 60),
}
SUPPORT_NOTES = [
    "Customer called: asks for delivery before Friday if possible.",
    "Customer asked by e-mail whether the mug is dishwasher safe; answered yes.",
    "Gift: no prices on the packing slip please.",
    "Le client souhaite être prévenu par SMS avant la livraison.",
    "Second order this month; happy customer, mention the loyalty programme next time.",
    "Customer confirmed the door code by phone: 4821B.",
]
GIFT_MESSAGES = [
    "Joyeux anniversaire ! Avec toute notre affection.",
    "Happy birthday, with love from all of us.",
    "Merci pour tout — à très bientôt.",
]


def orders_plan(demo: Demo, customers: list[DemoCustomer]) -> list[dict]:
    """One spec per order (status, customer, B2B or not, a variant draw, when placed), oldest first."""
    rng = demo.rng
    b2c = [c for c in customers if not c.terms and not c.is_test and not c.showcase]
    b2b = [c for c in customers if c.terms]
    tests = [c for c in customers if c.is_test]
    specs = []
    for status, count in PLAN.items():
        low, high = AGE_DAYS[status]
        for index in range(count):
            variant = rng.random()
            is_b2b = status == OrderStatus.PENDING_APPROVAL or (
                status not in {OrderStatus.DRAFT, OrderStatus.UNDER_REVIEW} and variant < 0.12
            )
            is_test = not is_b2b and index in (3, 17) and status != OrderStatus.DRAFT
            customer = rng.choice(b2b if is_b2b else tests if is_test else b2c)
            age = datetime.timedelta(days=rng.uniform(low, high), minutes=rng.randint(0, 600))
            specs.append(
                {
                    "status": status,
                    "customer": customer,
                    "b2b": is_b2b,
                    "variant": variant,
                    "placed_at": demo.now - age - datetime.timedelta(minutes=5),
                }
            )
    specs.sort(key=lambda s: s["placed_at"])
    return specs


def _currency(customer: DemoCustomer, channel: str) -> str:
    country = customer.address["country"]
    if channel in {"store-lyon", "edi-reseller", "phone"}:
        return "EUR"
    return {"GB": "GBP", "US": "USD", "CH": "CHF"}.get(country, "EUR")


def order_lines_draw(demo: Demo, currency: str, *, at_least: int = 1) -> list[dict]:
    """Random catalogue lines, priced in `currency`."""
    rng = demo.rng
    count = max(at_least, rng.choice([1, 1, 2, 2, 2, 3, 3, 4]))
    lines = []
    for sku, name, price, rate in rng.sample(PRODUCTS, count):
        unit = (Decimal(price) * RATES[currency]).quantize(Decimal("0.10"))
        lines.append(
            {
                "sku": sku,
                "name": name,
                "quantity": rng.choice([1, 1, 1, 2, 2, 3]),
                "unit_price": str(unit),
                "tax_rate": rate,
            }
        )
    return lines


def shipping_for(currency: str, *, b2b: bool) -> dict:
    if b2b:
        return {"method": "pallet", "price": "35.00", "tax_rate": "0.20"}
    return {"method": "colissimo" if currency == "EUR" else "dhl-express", "price": "4.90", "tax_rate": "0.20"}


def order_create(demo: Demo, spec: dict) -> Order:
    """The spec's order, imported by the API client or taken by phone by support."""
    rng, status, customer = demo.rng, spec["status"], spec["customer"]
    demo.sequence += 1
    if spec["b2b"]:
        channel = "edi-reseller"
    else:
        channel = rng.choices([c for c, _ in B2C_CHANNELS], weights=[w for _, w in B2C_CHANNELS])[0]
    if status == OrderStatus.DRAFT:
        channel = "phone"
    currency = _currency(customer, channel)
    unpaid = spec["b2b"] or status in {OrderStatus.DRAFT, OrderStatus.AWAITING_PAYMENT}
    if status == OrderStatus.CONFIRMED and spec["variant"] > 0.85:
        unpaid = True  # paid by bank transfer later, recorded by finance
    if status == OrderStatus.CANCELED and spec["variant"] < 0.45:
        unpaid = True
    payment = None
    if not unpaid:
        method = {"amazon-fr": "marketplace", "store-lyon": "card-present"}.get(channel, "card")
        payment = {"status": "paid", "method": method, "reference": f"psp_{SEED}_{demo.sequence:05d}"}
    elif not spec["b2b"]:
        payment = {"status": "unpaid", "method": "bank-transfer"}
    by_phone = channel == "phone"
    actor = demo.users["support1"] if by_phone else demo.api
    tags = []
    if rng.random() < 0.12:
        tags.append("gift")
    at_least = 2 if status == OrderStatus.PARTIALLY_SHIPPED else 1
    lines = order_lines_draw(demo, currency, at_least=at_least)
    if "gift" in tags:
        # Gift-wrapped with a card: the parcel's packing slip carries the message and no prices.
        lines[0]["attributes"] = {"gift": {"wrap": True, "message": GIFT_MESSAGES[demo.sequence % len(GIFT_MESSAGES)]}}
    order, created = services.order_create(
        actor=actor,
        channel=channel,
        external_id=None if by_phone else f"DEMO-{channel.upper()}-{SEED}{demo.sequence:05d}",
        customer={
            "email": customer.email,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "phone": customer.address.get("phone", ""),
            "locale": customer.locale,
        },
        lines=lines,
        billing_address=customer.address,
        currency=currency,
        shipping=shipping_for(currency, b2b=spec["b2b"]),
        payment=payment,
        placed_at=spec["placed_at"],
        tags=tags,
        requires_approval=spec["b2b"],
        purchase_order_number=f"PO-{rng.randint(10000, 99999)}" if spec["b2b"] else "",
        locale=customer.locale,
        submit=status != OrderStatus.DRAFT and not (status == OrderStatus.CANCELED and spec["variant"] < 0.08),
        note="Ordered by phone; customer prefers e-mail contact." if by_phone and rng.random() < 0.4 else "",
    )
    assert created, order.number
    return order


def order_drive(demo: Demo, order: Order, spec: dict) -> Order:
    """Move the order to its planned status, each step by the role that does it."""
    u, rng, target, variant = demo.users, demo.rng, spec["status"], spec["variant"]
    if target == OrderStatus.DRAFT:
        return order
    if target == OrderStatus.PENDING_APPROVAL:
        if variant < 0.4:
            services.order_hold(
                order=order, actor=u["finance"], reason=HoldReason.CREDIT_LIMIT, note="Outstanding balance 4,820 €."
            )
        return order
    if target == OrderStatus.CANCELED:
        return _cancel(demo, order, spec)
    if spec["b2b"]:
        services.order_approve(order=order, actor=u["support2"], reason="Within the buyer's approval limit.")
        if target == OrderStatus.AWAITING_PAYMENT:
            return order
        services.order_accept_on_terms(order=order, actor=u["finance"], reason="Net 30 account.")
    if target == OrderStatus.AWAITING_PAYMENT:
        if variant < 0.25:
            services.order_hold(
                order=order,
                actor=u["finance"],
                reason=HoldReason.PAYMENT_OVERDUE,
                note="Bank transfer not received after 7 days; reminder sent.",
            )
        elif variant < 0.4:
            half = (order.total_gross / 2).quantize(Decimal("0.01"))
            services.order_mark_paid(
                order=order, actor=u["finance"], amount=half, method="bank-transfer", reference="VIR-DEMO-PART"
            )
        return order
    order.refresh_from_db()
    if order.status == OrderStatus.AWAITING_PAYMENT:
        services.order_mark_paid(
            order=order,
            actor=u["finance"],
            method="bank-transfer",
            reference=f"VIR-{order.number[-6:]}",
            reason="Bank transfer received.",
        )
    if target == OrderStatus.UNDER_REVIEW:
        services.order_flag_for_review(
            order=order,
            actor=u["support2"],
            reason=rng.choice(
                [
                    "Billing and shipping countries differ; card issued abroad.",
                    "Three orders in ten minutes with different cards.",
                    "High-value first order, e-mail domain created last week.",
                ]
            ),
            risk_score=rng.randint(70, 98),
        )
        if variant < 0.5:
            services.order_hold(
                order=order,
                actor=u["support2"],
                reason=HoldReason.FRAUD_REVIEW,
                note="Waiting for the PSP's 3DS log.",
            )
        return order
    if variant > 0.9 and not spec["b2b"]:
        services.order_flag_for_review(
            order=order, actor=u["support2"], reason="Unusual quantity for a first order.", risk_score=55
        )
        services.order_accept(order=order, actor=u["support2"], reason="Customer verified by phone.")
    _extras(demo, order)
    if target == OrderStatus.CONFIRMED:
        if variant < 0.3:
            _active_hold(demo, order)
        return order
    if variant < 0.3:
        hold = _active_hold(demo, order)
        services.order_release_hold(
            hold=hold, actor=u["support2"], note="Checked with the customer / supplier: OK to proceed."
        )
    services.order_start_preparation(order=order, actor=u["warehouse"])
    if target != OrderStatus.IN_PREPARATION:
        promised_supply_receive(demo, order)
    if target == OrderStatus.IN_PREPARATION:
        return order
    return order_ship(demo, order, target)


def _active_hold(demo: Demo, order: Order):
    u, rng = demo.users, demo.rng
    choice = rng.random()
    if choice < 0.4:
        return services.order_hold(
            order=order,
            actor=u["support1"],
            reason=HoldReason.ADDRESS_CHECK,
            note="Carrier flagged the postcode; waiting for the customer to confirm.",
        )
    if choice < 0.75:
        hold = services.order_hold(
            order=order,
            actor=u["warehouse"],
            reason=HoldReason.SUPPLIER_DELAY,
            note="Supplier delivery moved to next week.",
        )
        services.order_tag(order=order, actor=u["support2"], tag="supplier-delay")
        return hold
    return services.order_hold(
        order=order, actor=u["warehouse"], reason=HoldReason.STOCK_SHORTAGE, note="Cycle count found 2 missing."
    )


def _extras(demo: Demo, order: Order) -> None:
    u, rng = demo.users, demo.rng
    if rng.random() < 0.25:
        services.order_add_note(order=order, actor=u["support1"], body=rng.choice(SUPPORT_NOTES))
    if rng.random() < 0.1:
        services.order_tag(order=order, actor=u["support1"], tag="vip", reason="Top 1% customer.")
    if rng.random() < 0.08:
        address = dict(order.shipping_address)
        address["line2"] = "Bâtiment B, 3e étage" if address.get("country") == "FR" else "Flat 3"
        services.order_change_address(
            order=order, actor=u["support1"], kind="shipping", address=address, reason="Customer called."
        )


def _cancel(demo: Demo, order: Order, spec: dict) -> Order:
    u, rng, variant = demo.users, demo.rng, spec["variant"]
    if order.status == OrderStatus.DRAFT:
        return services.order_cancel(
            order=order,
            actor=u["support1"],
            reason_code=CancelReason.DUPLICATE,
            reason="Duplicate of an earlier order.",
        )
    if spec["b2b"]:
        services.order_approve(order=order, actor=u["support2"])
        return services.order_cancel(
            order=order,
            actor=u["support2"],
            reason_code=CancelReason.CUSTOMER_REQUEST,
            reason="Buyer replaced it with PO of next week.",
        )
    if order.status == OrderStatus.AWAITING_PAYMENT:
        code = rng.choice([CancelReason.CUSTOMER_REQUEST, CancelReason.PAYMENT_FAILED])
        return services.order_cancel(
            order=order,
            actor=u["support1"],
            reason_code=code,
            reason="No payment after 14 days." if code == CancelReason.PAYMENT_FAILED else "Customer changed mind.",
        )
    # Paid: canceling needs support level 2 (a refund becomes due).
    if variant < 0.6:
        services.order_flag_for_review(order=order, actor=u["support2"], reason="Chargeback on the same card.")
        return services.order_cancel(
            order=order, actor=u["support2"], reason_code=CancelReason.FRAUD, reason="Confirmed fraud (PSP)."
        )
    if variant < 0.8:
        services.order_hold(order=order, actor=u["warehouse"], reason=HoldReason.STOCK_SHORTAGE, note="0 in stock.")
        return services.order_cancel(
            order=order,
            actor=u["support2"],
            reason_code=CancelReason.OUT_OF_STOCK,
            reason="Out of stock; customer agreed to a refund.",
        )
    services.order_start_preparation(order=order, actor=u["warehouse"])
    return services.order_cancel(
        order=order,
        actor=u["support2"],
        reason_code=CancelReason.CUSTOMER_REQUEST,
        reason="Customer called before the parcel left.",
    )

"""The cockpit's own showcase: SLA policies, automation rules, cases in every queue and state (opened
by the detectors and by hand), a fraud review to clear and a customer who ordered twice under two
e-mail addresses (the possible duplicates)."""

import datetime
from decimal import Decimal

from oms.cockpit.demo.context import Demo, backdated
from oms.cockpit.demo.orders import order_lines_draw, shipping_for
from oms.core.actors import get_system_user
from oms.core.history import stamp
from orders import cases, services
from orders.automation import rule_clean
from orders.choices import CaseKind, HoldReason, OrderStatus
from orders.identity import customer_keys_refresh
from orders.models import AutomationRule, Case, Channel, Customer, Order, SlaPolicy, Tag

RULES = [
    {
        "name": "VIP customers: a call-back case",
        "description": "Every order of a VIP customer gets a person's attention.",
        "trigger": "order_placed",
        "customer_tags": "vip",
        "case_kind": CaseKind.ESCALATION,
        "add_tag": "vip",
    },
    {
        "name": "Big orders outside Europe: fraud review",
        "description": "Over 800 shipped to the US: reviewed before preparation.",
        "trigger": "order_placed",
        "min_total": Decimal("800"),
        "countries": "US",
        "risk_score": 75,
        "hold_reason": HoldReason.FRAUD_REVIEW,
    },
    {
        "name": "Late shipments: alert the warehouse leads",
        "trigger": "shipment_late",
        "notify_emails": "leads@oms-demo.invalid",
    },
    {
        "name": "Parcel lost: tag for the carrier claim",
        "trigger": "parcel_exception",
        "add_tag": "carrier-claim",
    },
]


def cockpit_showcase(demo: Demo, admin) -> None:
    """Cases in every queue and state, SLA policies, automation rules, a fraud review to clear."""
    u = demo.users
    for channel, limits in ((None, (24, 48, 72)), ("amazon-fr", (12, 24, 48))):
        SlaPolicy.objects.get_or_create(
            channel=Channel.objects.get(code=channel) if channel else None,
            defaults={
                "payment_to_preparation": datetime.timedelta(hours=limits[0]),
                "preparation_to_dispatch": datetime.timedelta(hours=limits[1]),
                "refund": datetime.timedelta(hours=limits[2]),
            },
        )
    for fields in RULES:
        rule = AutomationRule(**fields)
        rule_clean(rule)
        stamp(rule, actor=admin, reason="Demo data")
        rule.save()
    vip = Tag.objects.get_or_create(name="vip")[0]
    for customer in Customer.objects.filter(orders__tags=vip).distinct()[:5]:
        customer.tags.add(vip)

    # Two orders the channel's fraud tool scored high: one to clear, one still waiting; two web
    # orders paid two days ago and still not prepared: SLA breaches for the sweep below.
    customers = list(Customer.objects.filter(is_test=False, payment_terms_days__isnull=True).order_by("pk")[:4])

    def place(customer, external_id, **extra):
        return services.order_create(
            actor=demo.api,
            channel=extra.pop("channel", "web"),
            external_id=external_id,
            customer={"email": customer.email, "first_name": customer.first_name, "last_name": customer.last_name},
            billing_address=Order.objects.filter(customer=customer).values_list("billing_address", flat=True)[0],
            lines=order_lines_draw(demo, "EUR", at_least=2),
            shipping=shipping_for("EUR", b2b=False),
            payment={"status": "paid", "method": "card", "reference": f"pay-{external_id}"},
            **extra,
        )[0]

    risky = [
        place(
            customer,
            f"web-risk-{index + 1}",
            risk={"score": 88 + index, "facts": ["Billing and IP countries differ", "4 cards tried in 10 minutes"]},
        )
        for index, customer in enumerate(customers[:2])
    ]
    _twin_order(demo, customers[0], admin)
    with backdated(demo.now - datetime.timedelta(days=2)):
        for index, customer in enumerate(customers[2:]):
            place(customer, f"amz-late-{index + 1}", channel="amazon-fr")
    services.order_clear_fraud(
        order=risky[0], actor=u["support2"], reason="Called the cardholder: genuine, travelling abroad."
    )
    _cases_worked(demo)


def _twin_order(demo: Demo, twin: Customer, admin) -> None:
    """The same person ordering again under a work address: same phone, same street. The cockpit's
    "Possible duplicates" lists them for support to merge."""
    phone = twin.phone or "+33 6 41 27 83 90"
    if not twin.phone:
        twin.phone = phone
        stamp(twin, actor=admin, reason="Demo data")
        twin.save(update_fields=["phone"])
    services.order_create(
        actor=demo.api,
        channel="phone",
        external_id="phone-twin-1",
        customer={
            "email": f"pro.{twin.email}",
            "first_name": twin.first_name,
            "last_name": twin.last_name,
            "phone": phone,
        },
        billing_address=Order.objects.filter(customer=twin).values_list("billing_address", flat=True)[0],
        lines=order_lines_draw(demo, "EUR"),
        shipping=shipping_for("EUR", b2b=False),
        payment={"status": "paid", "method": "card", "reference": "pay-phone-twin-1"},
    )
    customer_keys_refresh(customer=twin, actor=admin, reason="Demo data")


def _cases_worked(demo: Demo) -> None:
    """Escalations opened by hand, then some of the queue worked: taken, escalated, one resolved
    with a force-majeure decision; the sweep opens what the detectors find."""
    u = demo.users
    # By hand: a medical emergency and a social one, as support would open them.
    open_orders = list(Order.objects.filter(status=OrderStatus.CONFIRMED, is_test=False).order_by("placed_at")[:3])
    for order, subtype, title in zip(
        open_orders,
        ("medical", "social", "vip"),
        (
            "Medical emergency: insulin pen needles, deliver before Friday",
            "Social emergency: family rehoused, new delivery address to confirm",
            "VIP: press order for the launch, call before shipping",
        ),
        strict=False,
    ):
        cases.case_open(
            kind=CaseKind.ESCALATION,
            source_key=f"escalation:{order.pk}:{subtype}",
            title=title,
            actor=u["support1"],
            order=order,
            facts={"subtype": subtype},
            by_hand=True,
        )
    # Work some of the queue: taken, escalated, one resolved with a force-majeure decision.
    support_cases = list(
        Case.objects.filter(kind__in=["address_check", "escalation"], level="l1")
        .exclude(status="resolved")
        .order_by("pk")
    )
    for case in support_cases[:2]:
        cases.case_assign(case=case, actor=u["support1"])
    if len(support_cases) > 2:
        cases.case_escalate(
            case=support_cases[2],
            actor=u["support1"],
            reason="Customer asks for a manager; threatens a chargeback.",
        )
    if len(support_cases) > 3:
        cases.case_resolve(
            case=support_cases[-1],
            actor=u["support1"],
            decision="force_majeure",
            resolution="Storm closed the carrier's hub for two days; customer informed.",
            evidence={"notice": "Carrier notice of 2026-11-18: hub closed (storm)."},
        )
    cases.cases_sweep(actor=get_system_user())

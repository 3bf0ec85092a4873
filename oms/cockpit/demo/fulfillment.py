"""The fulfillment showcase: every parcel state, on recent orders of their own customers (a printed
wave at the Paris warehouse, short picks resolved each way, a consolidated parcel, an order split
over two locations, store pickups, and parcels the carrier reports lost, damaged or returned)."""

import datetime

from django.conf import settings
from django.test.utils import override_settings

from fulfillment import services as fulfillment
from fulfillment.choices import ShipmentStatus
from fulfillment.models import ConsolidationRule, Shipment, ShortPick
from inventory.models import Location, Product
from oms.cockpit.demo.catalog import PRODUCTS
from oms.cockpit.demo.context import SEED, Demo
from oms.cockpit.demo.customers import DemoCustomer
from oms.cockpit.demo.orders import shipping_for
from oms.cockpit.demo.parcels import carrier_events_post, parcel_dispatch, parcel_pick, parcels_pending
from oms.core.history import stamp
from orders import services
from orders.choices import OrderStatus
from orders.models import Channel, Order


def fulfillment_showcase(demo: Demo, customers: list[DemoCustomer], admin) -> None:
    u, warehouse = demo.users, demo.users["warehouse"]
    who = {c.showcase: c for c in customers if c.showcase}
    paris = Location.objects.get(code="paris-wh")

    # Parcels on their way meet trouble: the carrier reports one lost, one damaged, one returned.
    troubled = Shipment.objects.filter(
        status__in=[ShipmentStatus.SHIPPED, ShipmentStatus.IN_TRANSIT], order__status=OrderStatus.SHIPPED
    ).order_by("pk")[:3]
    for parcel, code in zip(troubled, ("LOST", "DAMAGED", "RETURNED"), strict=True):
        carrier_events_post(demo, parcel, code)

    # From now on, successive web orders of one customer to one address share a parcel.
    rule = ConsolidationRule(channel=Channel.objects.get(code="web"), window_hours=24)
    stamp(rule, actor=admin, reason="Demo data")
    rule.save()
    first = _showcase_order(demo, who["consolidated"], "web", [("MUG-STONE-02", 2)], minutes_ago=150)
    _showcase_order(demo, who["consolidated"], "web", [("TEA-EARLGREY", 3)], minutes_ago=70)
    split = _showcase_order(
        demo, who["split"], "web", [("LAMP-BRASS", 1), ("TEA-EARLGREY", 2), ("NOTEBOOK-A5", 1)], minutes_ago=240
    )
    short_open = _showcase_order(
        demo, who["short-open"], "app", [("MUG-STONE-01", 2), ("TOTE-CANVAS", 1)], minutes_ago=200
    )
    substitute = _showcase_order(
        demo, who["substitute"], "app", [("MUG-STONE-02", 1), ("BOOK-GARDEN", 1)], minutes_ago=190
    )
    delay = _showcase_order(demo, who["delay"], "app", [("CANDLE-FIG", 2), ("TEA-EARLGREY", 1)], minutes_ago=180)
    cancel = _showcase_order(demo, who["cancel-line"], "app", [("TEE-ORG-M", 2), ("NOTEBOOK-A5", 1)], minutes_ago=170)
    gift = _showcase_order(
        demo,
        who["gift"],
        "web",
        [("BOOK-CUISINE", 1), ("CANDLE-FIG", 1)],
        minutes_ago=160,
        gift_message="Happy birthday, Grace! Lots of love from Emma.",
    )

    # This morning's wave at the Paris warehouse: these parcels and the oldest waiting ones.
    at_paris = {
        key: Shipment.objects.get(order=order, location=paris, status=ShipmentStatus.PENDING)
        for key, order in (
            ("consolidated", first),
            ("split", split),
            ("short-open", short_open),
            ("substitute", substitute),
            ("delay", delay),
            ("cancel-line", cancel),
            ("gift", gift),
        )
    }
    backlog = list(
        Shipment.objects.filter(
            location=paris,
            status=ShipmentStatus.PENDING,
            wave__isnull=True,
            order__status=OrderStatus.IN_PREPARATION,
        )
        .exclude(pk__in=[parcel.pk for parcel in at_paris.values()])
        .order_by("ship_by", "pk")[:8]
    )
    wave = fulfillment.wave_create(
        location=paris, actor=warehouse, shipment_ids=[p.pk for p in [*at_paris.values(), *backlog]]
    )
    fulfillment.wave_render_pick_list(wave=wave, actor=warehouse)

    # Picking: some done, one packed, the rest still on the list.
    for parcel in backlog[:3]:
        parcel_pick(parcel, warehouse)
    if len(backlog) > 3:
        parcel_pick(backlog[3], warehouse)
        fulfillment.shipment_pack(shipment=backlog[3], actor=warehouse)
    parcel_pick(at_paris["consolidated"], warehouse)
    parcel_pick(at_paris["gift"], warehouse)
    fulfillment.shipment_pack(shipment=at_paris["gift"], actor=warehouse)
    # Three lines from two places: the Paris parcel is on its way, the Lyon store's is not yet.
    parcel_dispatch(demo, at_paris["split"], label=True)
    carrier_events_post(demo, at_paris["split"], "PICKED_UP", "IN_TRANSIT")

    # Short picks: one waits for support, the others were settled each way with the customer.
    parcel_pick(at_paris["short-open"], warehouse, short={"MUG-STONE-01": 1}, note="Only one mug in the bin.")

    parcel = at_paris["substitute"]
    parcel_pick(parcel, warehouse, short={"MUG-STONE-02": 0}, note="Bin empty: last mug was chipped.")
    fulfillment.short_pick_substitute(
        short_pick=ShortPick.objects.get(shipment=parcel),
        actor=u["support2"],
        product=Product.objects.get(sku="MUG-STONE-01"),
        consent_channel="phone",
        consent_note="Happy with the sand mug instead of the ink blue one.",
    )
    parcel_pick(parcel, warehouse)
    fulfillment.shipment_pack(shipment=parcel, actor=warehouse)

    parcel = at_paris["delay"]
    parcel_pick(parcel, warehouse, short={"CANDLE-FIG": 1}, note="One candle in the bin, not two.")
    fulfillment.short_pick_delay(
        short_pick=ShortPick.objects.get(shipment=parcel),
        actor=u["support1"],
        promised_at=demo.now + datetime.timedelta(days=6),
        consent_channel="email",
        consent_note="Fine to receive the second candle next week.",
    )
    parcel_dispatch(demo, parcel, label=True)

    parcel = at_paris["cancel-line"]
    parcel_pick(parcel, warehouse, short={"TEE-ORG-M": 0}, note="No T-shirt M left on the shelf.")
    fulfillment.short_pick_cancel_line(
        short_pick=ShortPick.objects.get(shipment=parcel),
        actor=u["support2"],
        consent_channel="email",
        consent_note="Please cancel the two T-shirts and refund them.",
    )
    parcel_dispatch(demo, parcel, label=True)
    carrier_events_post(demo, parcel, "PICKED_UP")

    # Click and collect at the Lyon store: the store picks from its own shelves.
    pickups = {
        key: _showcase_order(demo, who[key], channel, lines, minutes_ago=minutes, pickup=True)
        for key, channel, lines, minutes in (
            ("pickup-ready", "store-lyon", [("CANDLE-FIG", 1), ("SCARF-SILK", 1)], 300),
            ("pickup-collected", "web", [("LAMP-BRASS", 1)], 1500),
            ("pickup-expired", "store-lyon", [("MUG-STONE-01", 2)], 2900),
        )
    }
    for key, order in pickups.items():
        (parcel,) = parcels_pending(order)
        parcel_pick(parcel, warehouse)
        # Demo only: this one's holding period ends at once, so that the expiry job has work.
        days = 0 if key == "pickup-expired" else settings.OMS_PICKUP_HOLD_DAYS
        with override_settings(OMS_PICKUP_HOLD_DAYS=days):
            fulfillment.shipment_ready_for_pickup(shipment=parcel, actor=warehouse)
        if key == "pickup-collected":
            fulfillment.shipment_hand_over(shipment=parcel, actor=warehouse, reason="ID checked at the counter.")
    fulfillment.pickups_remind_and_expire(actor=demo.system)


def _showcase_order(
    demo: Demo,
    customer: DemoCustomer,
    channel: str,
    skus: list[tuple[str, int]],
    *,
    minutes_ago: int,
    pickup: bool = False,
    gift_message: str = "",
) -> Order:
    """A paid order imported from the channel and in preparation (its parcels planned)."""
    demo.sequence += 1
    catalogue = {sku: (name, price, rate) for sku, name, price, rate in PRODUCTS}
    lines = [
        {
            "sku": sku,
            "name": catalogue[sku][0],
            "quantity": quantity,
            "unit_price": catalogue[sku][1],
            "tax_rate": catalogue[sku][2],
        }
        for sku, quantity in skus
    ]
    if gift_message:
        lines[0]["attributes"] = {"gift": {"wrap": True, "message": gift_message}}
    if pickup:
        shipping = {
            "method": "click-and-collect",
            "price": "0.00",
            "tax_rate": "0.20",
            "pickup_location": "lyon-store",
        }
    else:
        shipping = shipping_for("EUR", b2b=False)
    order, created = services.order_create(
        actor=demo.api,
        channel=channel,
        external_id=f"DEMO-{channel.upper()}-{SEED}{demo.sequence:05d}",
        customer={
            "email": customer.email,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "phone": customer.address.get("phone", ""),
            "locale": customer.locale,
        },
        lines=lines,
        billing_address=customer.address,
        currency="EUR",
        shipping=shipping,
        payment={
            "status": "paid",
            "method": "card-present" if channel == "store-lyon" else "card",
            "reference": f"psp_{SEED}_{demo.sequence:05d}",
        },
        placed_at=demo.now - datetime.timedelta(minutes=minutes_ago),
        tags=["gift"] if gift_message else [],
        locale=customer.locale,
    )
    assert created, order.number
    return services.order_start_preparation(order=order, actor=demo.users["warehouse"])

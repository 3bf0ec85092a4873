"""Channels, tags, locations, products and their opening stock: master data, saved directly where no
service writes it (configuration), received through the inventory services where stock moves."""

import datetime
from decimal import Decimal

from django.utils import timezone

from inventory.models import ChannelStockSettings, Location, Product, StockItem, TransitTime
from inventory.services import stock_receive, supply_create
from oms.core.history import stamp
from orders.choices import ChannelKind
from orders.models import Channel, Tag

CHANNELS = [
    # code, name, kind, commission, prices include tax
    ("web", "Web store", ChannelKind.WEB, "0", True),
    ("app", "Mobile app", ChannelKind.APP, "0", True),
    ("amazon-fr", "Amazon marketplace", ChannelKind.MARKETPLACE, "0.15", True),
    ("edi-reseller", "EDI reseller", ChannelKind.EDI, "0.05", False),
    ("store-lyon", "Lyon store", ChannelKind.STORE, "0", True),
    ("phone", "Phone orders", ChannelKind.PHONE, "0", True),
    ("instagram-live", "Instagram live", ChannelKind.SOCIAL, "0.08", True),
]

TAGS = {"vip": "#b45309", "gift": "#be185d", "supplier-delay": "#7c3aed"}

PRODUCTS = [
    # sku, name, price (EUR, tax included), tax rate
    ("MUG-STONE-01", "Stoneware mug, sand", "14.90", "0.20"),
    ("MUG-STONE-02", "Stoneware mug, ink blue", "14.90", "0.20"),
    ("TEE-ORG-M", "Organic cotton T-shirt, M", "29.00", "0.20"),
    ("TEE-ORG-L", "Organic cotton T-shirt, L", "29.00", "0.20"),
    ("HOOD-GRY-L", "Hoodie, heather grey, L", "69.00", "0.20"),
    ("TOTE-CANVAS", "Canvas tote bag", "19.50", "0.20"),
    ("BOOK-CUISINE", "Cuisine de saison (book)", "32.00", "0.055"),
    ("BOOK-GARDEN", "The Small Garden (book)", "24.00", "0.055"),
    ("CANDLE-FIG", "Scented candle, fig", "27.00", "0.20"),
    ("LAMP-BRASS", "Brass desk lamp", "149.00", "0.20"),
    ("BLANKET-WOOL", "Merino wool blanket", "189.00", "0.20"),
    ("TEA-EARLGREY", "Earl Grey tea, 100 g", "9.80", "0.055"),
    ("SCARF-SILK", "Silk scarf, indigo", "85.00", "0.20"),
    ("NOTEBOOK-A5", "Dotted notebook A5", "12.00", "0.20"),
]
# Customs tariff headings by SKU family: a parcel leaving the EU declares one per line.
HS_CODES = {
    "MUG": "691200",
    "TEE": "610910",
    "HOOD": "611020",
    "TOTE": "420222",
    "BOOK": "490199",
    "CANDLE": "340600",
    "LAMP": "940520",
    "BLANKET": "630120",
    "TEA": "090240",
    "SCARF": "621410",
    "NOTEBOOK": "482010",
}
# Where the demo stock sits: (code, name, kind, country, city, handling days, cost per parcel, priority, flags).
LOCATIONS = [
    ("paris-wh", "Paris warehouse", "warehouse", "FR", "Paris", 1, "4.90", 10, {}),
    (
        "lyon-store",
        "Lyon store",
        "store",
        "FR",
        "Lyon",
        1,
        "6.50",
        20,
        {"ships_from_store": True, "store_pickup": True},
    ),
    ("lille-3pl", "Lille 3PL hub", "3pl", "FR", "Lille", 2, "5.50", 30, {}),
    ("london-3pl", "London 3PL", "3pl", "GB", "London", 1, "7.90", 40, {}),
]
# Units per location code. Some SKUs live in one place only (orders that mix them ship in two
# parcels); the blanket runs short and is promised from a purchase order.
STOCK = {
    "paris-wh": {"*": 400, "LAMP-BRASS": 0, "SCARF-SILK": 0, "BLANKET-WOOL": 3},
    "lyon-store": {"LAMP-BRASS": 60, "SCARF-SILK": 40, "CANDLE-FIG": 30, "MUG-STONE-01": 25},
    "lille-3pl": {"TEE-ORG-M": 200, "TEE-ORG-L": 200, "HOOD-GRY-L": 120, "NOTEBOOK-A5": 300},
    "london-3pl": {"*": 80, "LAMP-BRASS": 0, "SCARF-SILK": 0, "BLANKET-WOOL": 0},
}


def bin_for(index: int) -> str:
    """Aisle-bay-level of the n-th catalogue product: A-2-1, A-5-2 … A-14-2, B-2-3 …

    Bays are not zero-padded, as on the shelf labels: a pick list sorted as text would send the
    picker to A-11 before A-2; ours sorts them naturally."""
    return f"{'ABC'[index // 5]}-{(index % 5) * 3 + 2}-{index % 3 + 1}"


def channels_create(admin) -> None:
    """The sales channels and the order tags (configuration: no service writes them)."""
    for code, name, kind, commission, includes_tax in CHANNELS:
        if Channel.objects.filter(code=code).exists():
            continue
        channel = Channel(
            code=code,
            name=name,
            kind=kind,
            commission_rate=Decimal(commission),
            default_currency="EUR",
            prices_include_tax=includes_tax,
        )
        stamp(channel, actor=admin, reason="Demo data")
        channel.save()
    for name, color in TAGS.items():
        Tag.objects.get_or_create(name=name, defaults={"color": color})


def catalog_create(admin) -> None:
    """Locations, transit times, products and stock (received through the inventory services)."""
    locations = {}
    for code, name, kind, country, city, handling, cost, priority, flags in LOCATIONS:
        locations[code], _ = Location.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "country": country,
                "city": city,
                "handling_days": handling,
                "cost_per_parcel": Decimal(cost),
                "priority": priority,
                **flags,
            },
        )
    for location in locations.values():
        for country, days in (
            ("FR", 1 if location.country == "FR" else 2),
            ("GB", 1 if location.country == "GB" else 3),
        ):
            TransitTime.objects.get_or_create(location=location, country=country, defaults={"days": days})
    for sku, name, _price, _rate in PRODUCTS:
        product, _ = Product.objects.get_or_create(
            sku=sku,
            defaults={
                "name": name,
                "hs_code": HS_CODES[sku.split("-")[0]],
                "country_of_origin": "FR",
                "weight_grams": 400,
                "is_key": sku in {"LAMP-BRASS", "BLANKET-WOOL"},
            },
        )
        for code, units in STOCK.items():
            quantity = units.get(sku, units.get("*", 0))
            if quantity:
                stock_receive(
                    product=product,
                    location=locations[code],
                    quantity=quantity,
                    actor=admin,
                    reference="Demo opening stock",
                )
    # Shelf positions (master data the stock screen edits; no service writes them): a product
    # sits at the same aisle-bay-level in every building, so a picker learns one map.
    position = {sku: index for index, (sku, _name, _price, _rate) in enumerate(PRODUCTS)}
    for item in StockItem.objects.filter(location__in=locations.values(), bin_location="").select_related("product"):
        if item.product.sku in position:
            item.bin_location = bin_for(position[item.product.sku])
            item.save(update_fields=["bin_location", "updated_at"])
    blanket = Product.objects.get(sku="BLANKET-WOOL")
    supply_create(
        product=blanket,
        location=locations["paris-wh"],
        quantity=60,
        expected_at=timezone.localdate() + datetime.timedelta(days=12),
        reference="PO-2026-0042",
        actor=admin,
    )
    # The Lyon store's own customers win the last unit over the web.
    for code, priority in (("store-lyon", 1), ("web", 50), ("amazon-fr", 60)):
        channel = Channel.objects.filter(code=code).first()
        if channel is not None:
            ChannelStockSettings.objects.get_or_create(channel=channel, defaults={"priority": priority})

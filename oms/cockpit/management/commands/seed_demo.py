"""Demo data for the cockpit: role users, channels, customers and ~250 orders in every status.

Every order is created and moved ONLY through `orders.services` and `fulfillment.services`, each
step by the role that does it in real life (the API client imports, support cancels and holds, the
warehouse picks, packs and ships parcels, a 3PL reports its own through the API, the carrier's
webhook tracks them, finance records payments and closes), so the timeline, the history and the
outbox look like production. Fulfillment shows every parcel state: a printed wave at the Paris
warehouse, short picks (one open, one resolved each way), parcels in transit, delivered and lost,
store pickups, a consolidated parcel and an order split over two locations. Billing and returns
follow through `billing.services` and `returns.services`: payment rows, billing policies, invoices
(one overdue), credit notes by lines and by amount, refunds in each state, a voucher, a dispute with
its evidence pack, and returns requested, approved, inspected and refused. Reproducible (fixed
random seed) and idempotent: when the demo orders exist, nothing is created again; the users are
(re)printed.

DEMO ONLY: the passwords are deterministic and printed. Never run this against production.
"""

import contextlib
import datetime
import logging
import random
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count
from django.test.utils import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token

from fulfillment import services as fulfillment
from fulfillment.choices import ShipmentStatus
from fulfillment.models import ConsolidationRule, Shipment, ShortPick
from oms.cockpit import roles
from oms.core.actors import get_system_user
from oms.core.history import stamp
from orders import services
from orders.choices import CancelReason, ChannelKind, HoldReason, OrderStatus
from orders.models import Channel, Customer, Order, Tag

SEED = 2026
PASSWORD = "demo-{username}-2026"

STAFF = [
    # username, role, first name, last name
    ("support1", roles.SUPPORT_L1, "Léa", "Moreau"),
    ("support2", roles.SUPPORT_L2, "Tom", "Baker"),
    ("warehouse", roles.WAREHOUSE, "Karim", "Benali"),
    ("finance", roles.FINANCE, "Claire", "Dubois"),
    ("finance-manager", roles.FINANCE_MANAGER, "Sarah", "Collins"),
    ("admin", roles.ADMINISTRATOR, "Alex", "Admin"),
]
API_USERNAME = "api-client"

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
B2C_CHANNELS = [("web", 40), ("app", 15), ("amazon-fr", 15), ("store-lyon", 8), ("phone", 12), ("instagram-live", 10)]

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
RATES = {"EUR": Decimal("1"), "GBP": Decimal("0.86"), "USD": Decimal("1.08"), "CHF": Decimal("0.95")}

FR_FIRST = "Camille Léa Chloé Manon Inès Jeanne Louise Zoé Hugo Lucas Théo Jules Arthur Louis Gabriel Raphaël".split()
FR_LAST = "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre Roux".split()
EN_FIRST = "Oliver Amelia George Isla Harry Ava Jack Emily Charlie Sophie Grace James Lily William Freya".split()
EN_LAST = "Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Wright Walker Evans Clarke Hughes".split()
FR_CITIES = [
    ("75011", "Paris", "FR"),
    ("69002", "Lyon", "FR"),
    ("13001", "Marseille", "FR"),
    ("33000", "Bordeaux", "FR"),
    ("59000", "Lille", "FR"),
    ("44000", "Nantes", "FR"),
    ("31000", "Toulouse", "FR"),
    ("1000", "Bruxelles", "BE"),
    ("1204", "Genève", "CH"),
]
EN_CITIES = [
    ("EC1A 1BB", "London", "GB"),
    ("M1 1AE", "Manchester", "GB"),
    ("BS1 4DJ", "Bristol", "GB"),
    ("EH1 1YZ", "Edinburgh", "GB"),
    ("D02 X285", "Dublin", "IE"),
    ("10001", "New York", "US"),
]
FR_STREETS = ["rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "boulevard Voltaire", "rue du Marché"]
EN_STREETS = ["High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane"]
B2B = [
    # company, contact first, last, locale, city index
    ("Maison Lumière SARL", "Hélène", "Garnier", "fr", 1),
    ("Atelier Dupont", "Marc", "Dupont", "fr", 0),
    ("Librairie du Parc", "Sophie", "Fontaine", "fr", 3),
    ("Boutique Céleste", "Nadia", "Haddad", "fr", 6),
    ("Northwind Retail Ltd", "Richard", "Hale", "en", 0),
    ("Green & Co Trading", "Emma", "Green", "en", 2),
]

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
# Customers of the fulfillment showcase orders, kept out of the random plan so that nothing else of
# theirs is on its way (a consolidation, a wave or a pickup would otherwise pick up strangers).
# key, first name, last name, locale, (postal code, city, country), street
SHOWCASE_CUSTOMERS = [
    ("consolidated", "Paul", "Girard", "fr", ("75011", "Paris", "FR"), "12 rue Oberkampf"),
    ("split", "Margaux", "Lambert", "fr", ("33000", "Bordeaux", "FR"), "8 cours de l'Intendance"),
    ("short-open", "Nora", "Bensaïd", "fr", ("44000", "Nantes", "FR"), "3 rue Crébillon"),
    ("substitute", "Victor", "Chevalier", "fr", ("31000", "Toulouse", "FR"), "27 rue d'Alsace-Lorraine"),
    ("delay", "Amélie", "Rousseau", "fr", ("13001", "Marseille", "FR"), "41 rue Paradis"),
    ("cancel-line", "Lucie", "Garnier", "fr", ("59000", "Lille", "FR"), "5 rue Esquermoise"),
    ("gift", "Emma", "Whitfield", "en", ("75011", "Paris", "FR"), "88 boulevard Voltaire"),
    ("pickup-ready", "Élise", "Fournier", "fr", ("69002", "Lyon", "FR"), "14 rue Mercière"),
    ("pickup-collected", "Julien", "Mercier", "fr", ("69002", "Lyon", "FR"), "2 quai Saint-Antoine"),
    ("pickup-expired", "Sofia", "Marchetti", "fr", ("69002", "Lyon", "FR"), "9 rue des Marronniers"),
]
# What the sandbox carrier says at each step (its webhook payload's status, description, place).
CARRIER_STEPS = {
    "PICKED_UP": ("Parcel picked up", "Paris Bercy depot"),
    "IN_TRANSIT": ("At the sorting hub", "Chilly-Mazarin hub"),
    "DELIVERED": ("Delivered to the recipient", ""),
    "LOST": ("Parcel cannot be located; investigation opened", "Chilly-Mazarin hub"),
    "DAMAGED": ("Parcel damaged in the sorting machine", "Chilly-Mazarin hub"),
    "RETURNED": ("Address incomplete: returned to sender", "Paris Bercy depot"),
}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def bin_for(index: int) -> str:
    """Aisle-bay-level of the n-th catalogue product: A-2-1, A-5-2 … A-14-2, B-2-3 …

    Bays are not zero-padded, as on the shelf labels: a pick list sorted as text would send the
    picker to A-11 before A-2; ours sorts them naturally."""
    return f"{'ABC'[index // 5]}-{(index % 5) * 3 + 2}-{index % 3 + 1}"


@contextlib.contextmanager
def _backdated(when: datetime.datetime):
    """Demo only: the clock set back to `when` (time-machine, a development dependency), so that an
    invoice can have been issued weeks ago; without time-machine, the clock stays as it is."""
    try:
        import time_machine
    except ImportError:
        yield
        return
    with time_machine.travel(when, tick=False):
        yield


@dataclass
class DemoCustomer:
    email: str
    first_name: str
    last_name: str
    locale: str
    address: dict
    company: str = ""
    terms: bool = False
    is_test: bool = False
    showcase: str = ""  # key of a fulfillment showcase customer (SHOWCASE_CUSTOMERS); never in the random plan
    orders: int = field(default=0)


class Demo:
    def __init__(self, *, users: dict, api_client, rng: random.Random):
        self.users = users
        self.api = api_client
        self.rng = rng
        self.now = timezone.now()
        self.sequence = 0
        self.system = get_system_user()  # automation: the carrier webhook, the pickup expiry job
        self.parcel_rng = random.Random(SEED + 1)  # parcels draw apart: the orders stay as they were
        self.manifest_parcels = 0

    # --- master data (no service exists for these: configuration and customer records) --------
    def create_channels(self, admin) -> None:
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

    def create_catalog(self, admin) -> None:
        """Locations, transit times, products and stock (received through the inventory services)."""
        from inventory.models import ChannelStockSettings, Location, Product, StockItem, TransitTime
        from inventory.services import stock_receive, supply_create

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
        for item in StockItem.objects.filter(location__in=locations.values(), bin_location="").select_related(
            "product"
        ):
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

    def build_customers(self) -> list[DemoCustomer]:
        rng = self.rng
        customers: list[DemoCustomer] = []
        seen: set[str] = set()

        def address(name, company, cities, streets, locale):
            postal_code, city, country = rng.choice(cities)
            number = rng.randint(1, 180)
            street = rng.choice(streets)
            return {
                "name": name,
                "company": company,
                "line1": f"{number} {street}" if locale == "fr" else f"{number} {street}",
                "postal_code": postal_code,
                "city": city,
                "country": country,
                "phone": "+33 6 " + " ".join(str(rng.randint(10, 99)) for _ in range(4)) if country == "FR" else "",
            }

        def unique_email(first, last, domain):
            base = f"{_ascii(first)}.{_ascii(last)}"
            email, n = f"{base}@{domain}", 2
            while email in seen:
                email, n = f"{base}{n}@{domain}", n + 1
            seen.add(email)
            return email

        for _ in range(30):
            first, last = rng.choice(FR_FIRST), rng.choice(FR_LAST)
            customers.append(
                DemoCustomer(
                    email=unique_email(first, last, "example.fr"),
                    first_name=first,
                    last_name=last,
                    locale="fr",
                    address=address(f"{first} {last}", "", FR_CITIES, FR_STREETS, "fr"),
                )
            )
        for _ in range(22):
            first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
            customers.append(
                DemoCustomer(
                    email=unique_email(first, last, "example.co.uk"),
                    first_name=first,
                    last_name=last,
                    locale="en",
                    address=address(f"{first} {last}", "", EN_CITIES, EN_STREETS, "en"),
                )
            )
        for company, first, last, locale, city in B2B:
            cities, streets = (FR_CITIES, FR_STREETS) if locale == "fr" else (EN_CITIES, EN_STREETS)
            domain = _ascii(company).replace("&", "").replace("sarl", "").replace("ltd", "").strip(".") + ".example"
            a = address(f"{first} {last}", company, [cities[city]], streets, locale)
            customers.append(
                DemoCustomer(
                    email=f"purchasing@{domain}",
                    first_name=first,
                    last_name=last,
                    locale=locale,
                    address=a,
                    company=company,
                    terms=True,
                )
            )
        for n, (first, last) in enumerate([("Quality", "Assurance"), ("Test", "Checkout")], start=1):
            customers.append(
                DemoCustomer(
                    email=f"qa+{n}@oms.example",
                    first_name=first,
                    last_name=last,
                    locale="en",
                    address=address(f"{first} {last}", "", FR_CITIES[:1], FR_STREETS, "en"),
                    is_test=True,
                )
            )
        for index, (key, first, last, locale, (postal_code, city, country), street) in enumerate(SHOWCASE_CUSTOMERS):
            customers.append(
                DemoCustomer(
                    email=unique_email(first, last, "example.fr" if locale == "fr" else "example.co.uk"),
                    first_name=first,
                    last_name=last,
                    locale=locale,
                    address={
                        "name": f"{first} {last}",
                        "company": "",
                        "line1": street,
                        "postal_code": postal_code,
                        "city": city,
                        "country": country,
                        "phone": f"+33 6 12 34 56 {10 + index}",  # one each: the duplicate finder compares them
                    },
                    showcase=key,
                )
            )
        return customers

    def create_customers(self, customers: list[DemoCustomer], admin) -> None:
        for c in customers:
            customer = Customer(
                email=c.email,
                first_name=c.first_name,
                last_name=c.last_name,
                phone=c.address.get("phone", ""),
                company_name=c.company,
                locale=c.locale,
                payment_terms_days=30 if c.terms else None,
                is_test=c.is_test,
            )
            stamp(customer, actor=admin, reason="Demo data")
            customer.save()

    # --- orders ---------------------------------------------------------------------------------
    def plan(self, customers: list[DemoCustomer]) -> list[dict]:
        rng = self.rng
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
                        "placed_at": self.now - age - datetime.timedelta(minutes=5),
                    }
                )
        specs.sort(key=lambda s: s["placed_at"])
        return specs

    def _currency(self, customer: DemoCustomer, channel: str) -> str:
        country = customer.address["country"]
        if channel in {"store-lyon", "edi-reseller", "phone"}:
            return "EUR"
        return {"GB": "GBP", "US": "USD", "CH": "CHF"}.get(country, "EUR")

    def _lines(self, currency: str, *, at_least: int = 1) -> list[dict]:
        rng = self.rng
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

    def _shipping(self, currency: str, *, b2b: bool) -> dict:
        if b2b:
            return {"method": "pallet", "price": "35.00", "tax_rate": "0.20"}
        return {"method": "colissimo" if currency == "EUR" else "dhl-express", "price": "4.90", "tax_rate": "0.20"}

    def create_order(self, spec: dict) -> Order:
        rng, status, customer = self.rng, spec["status"], spec["customer"]
        self.sequence += 1
        if spec["b2b"]:
            channel = "edi-reseller"
        else:
            channel = rng.choices([c for c, _ in B2C_CHANNELS], weights=[w for _, w in B2C_CHANNELS])[0]
        if status == OrderStatus.DRAFT:
            channel = "phone"
        currency = self._currency(customer, channel)
        unpaid = spec["b2b"] or status in {OrderStatus.DRAFT, OrderStatus.AWAITING_PAYMENT}
        if status == OrderStatus.CONFIRMED and spec["variant"] > 0.85:
            unpaid = True  # paid by bank transfer later, recorded by finance
        if status == OrderStatus.CANCELED and spec["variant"] < 0.45:
            unpaid = True
        payment = None
        if not unpaid:
            method = {"amazon-fr": "marketplace", "store-lyon": "card-present"}.get(channel, "card")
            payment = {"status": "paid", "method": method, "reference": f"psp_{SEED}_{self.sequence:05d}"}
        elif not spec["b2b"]:
            payment = {"status": "unpaid", "method": "bank-transfer"}
        by_phone = channel == "phone"
        actor = self.users["support1"] if by_phone else self.api
        tags = []
        if rng.random() < 0.12:
            tags.append("gift")
        at_least = 2 if status == OrderStatus.PARTIALLY_SHIPPED else 1
        lines = self._lines(currency, at_least=at_least)
        if "gift" in tags:
            # Gift-wrapped with a card: the parcel's packing slip carries the message and no prices.
            lines[0]["attributes"] = {
                "gift": {"wrap": True, "message": GIFT_MESSAGES[self.sequence % len(GIFT_MESSAGES)]}
            }
        order, created = services.order_create(
            actor=actor,
            channel=channel,
            external_id=None if by_phone else f"DEMO-{channel.upper()}-{SEED}{self.sequence:05d}",
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
            shipping=self._shipping(currency, b2b=spec["b2b"]),
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

    def drive(self, order: Order, spec: dict) -> Order:
        """Move the order to its planned status, each step by the role that does it."""
        u, rng, target, variant = self.users, self.rng, spec["status"], spec["variant"]
        if target == OrderStatus.DRAFT:
            return order
        if target == OrderStatus.PENDING_APPROVAL:
            if variant < 0.4:
                services.order_hold(
                    order=order, actor=u["finance"], reason=HoldReason.CREDIT_LIMIT, note="Outstanding balance 4,820 €."
                )
            return order
        if target == OrderStatus.CANCELED:
            return self._cancel(order, spec)
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
        self._extras(order)
        if target == OrderStatus.CONFIRMED:
            if variant < 0.3:
                self._active_hold(order)
            return order
        if variant < 0.3:
            hold = self._active_hold(order)
            services.order_release_hold(
                hold=hold, actor=u["support2"], note="Checked with the customer / supplier: OK to proceed."
            )
        services.order_start_preparation(order=order, actor=u["warehouse"])
        if target != OrderStatus.IN_PREPARATION:
            self._receive_promised_supply(order)
        if target == OrderStatus.IN_PREPARATION:
            return order
        return self._ship(order, target)

    # --- parcels: pick, pack, label, hand over, track ---------------------------------------------
    def _ship(self, order: Order, target: str) -> Order:
        """From preparation to the planned status, parcel by parcel (each planned at the start)."""
        u = self.users
        parcels = self._pending_parcels(order)
        # Demo shortcut: a label costs a WeasyPrint pass (~0.25 s). Parcels of the last week get the
        # sandbox carrier's label; older ones went out with a tracking number from the carrier's
        # pickup manifest (no label file), so that `make run` stays quick.
        label = order.placed_at >= self.now - datetime.timedelta(days=7)
        if target == OrderStatus.PARTIALLY_SHIPPED:
            if len(parcels) > 1:
                # Sourced from two places: the first parcel has left, the other is still being prepared.
                self._dispatch(parcels[0], label=label)
                services.order_add_note(
                    order=order, actor=u["warehouse"], body="Second parcel leaves from the other site."
                )
                return order
            # One parcel: the first line went ahead on its own, recorded by hand outside any parcel;
            # the parcel gives those units up and keeps the rest.
            first = order.lines.order_by("line_number").first()
            services.order_record_shipment(
                order=order, actor=u["warehouse"], quantities={first.pk: first.quantity}, reference=self._tracking()
            )
            services.order_add_note(
                order=order, actor=u["warehouse"], body="Rest of the order waits for the supplier delivery."
            )
            return order
        for parcel in parcels:
            self._dispatch(parcel, label=label)
        order.refresh_from_db()
        if order.status != OrderStatus.SHIPPED:
            # A test order takes no stock and has no parcel: the warehouse records it by hand.
            services.order_record_shipment(order=order, actor=u["warehouse"], reference=self._tracking())
        if target == OrderStatus.SHIPPED:
            for parcel in parcels:
                if self.parcel_rng.random() < 0.6:
                    self._carrier_events(parcel, "PICKED_UP", "IN_TRANSIT")
            return order
        for parcel in parcels:
            self._carrier_events(parcel, "PICKED_UP", "IN_TRANSIT", "DELIVERED")
        order.refresh_from_db()
        if order.status != OrderStatus.DELIVERED:
            services.order_mark_delivered(order=order, actor=u["warehouse"], reason="Carrier: delivered.")
        if target == OrderStatus.DELIVERED:
            return order
        # Demo data only: the orders were "delivered" a second ago, so the return window is set to 0
        # days for the close step (the real rule, OMS_RETURN_WINDOW_DAYS after delivery, is unchanged).
        with override_settings(OMS_RETURN_WINDOW_DAYS=0):
            services.order_complete(order=order, actor=u["finance"], reason="Return window elapsed.")
        return order

    @staticmethod
    def _pending_parcels(order: Order) -> list[Shipment]:
        return list(
            Shipment.objects.filter(order=order, status=ShipmentStatus.PENDING)
            .select_related("location")
            .order_by("location__priority", "pk")
        )

    def _pick(self, parcel: Shipment, actor, *, short: dict[str, int] | None = None, note: str = "") -> None:
        """Confirm every unit still to pick, or for the SKUs in `short` the units found (a short pick)."""
        short = short or {}
        picked = {
            line.pk: short.get(line.order_line.sku, line.quantity)
            for line in parcel.lines.select_related("order_line")
            if line.quantity_picked < line.quantity
        }
        if picked:
            fulfillment.shipment_confirm_picks(shipment=parcel, actor=actor, picked=picked, note=note)

    def _dispatch(self, parcel: Shipment, *, label: bool) -> Shipment:
        """Pick, pack and hand the parcel over. A 3PL does it through the API with its own carrier
        account (it sends the tracking number); our sites print the sandbox carrier's label, or give
        the manifest's tracking number (`label=False`)."""
        from inventory.models import LocationKind

        parcel.refresh_from_db()
        third_party = parcel.location.kind == LocationKind.THIRD_PARTY
        actor = self.api if third_party else self.users["warehouse"]
        if parcel.status in (ShipmentStatus.PENDING, ShipmentStatus.PICKING):
            self._pick(parcel, actor)
            fulfillment.shipment_pack(shipment=parcel, actor=actor)
        if label and not third_party:
            return fulfillment.shipment_dispatch(shipment=parcel, actor=actor)
        # Outside the range the label counter draws from (SBX<yy>…): never the same number twice.
        self.manifest_parcels += 1
        return fulfillment.shipment_dispatch(
            shipment=parcel,
            actor=actor,
            carrier="sandbox",
            service="standard",
            tracking_number=f"SBX9{self.manifest_parcels:09d}",
        )

    def _carrier_events(self, parcel: Shipment, *codes: str) -> None:
        """The sandbox carrier's tracking webhook, as it posts it (received as the system user)."""
        parcel.refresh_from_db(fields=["tracking_number", "carrier"])
        started = timezone.now()
        events = []
        for step, code in enumerate(codes, start=1):
            description, place = CARRIER_STEPS[code]
            events.append(
                {
                    "id": f"{parcel.tracking_number}-{code}",
                    "tracking_number": parcel.tracking_number,
                    "status": code,
                    "occurred_at": (started + datetime.timedelta(seconds=step)).isoformat(),
                    "description": description,
                    "location": place,
                }
            )
        fulfillment.carrier_webhook_receive(carrier=parcel.carrier, payload={"events": events}, actor=self.system)

    # --- fulfillment showcase: every parcel state, on recent orders of their own customers ---------
    def fulfillment_showcase(self, customers: list[DemoCustomer], admin) -> None:
        from inventory.models import Location, Product

        u, warehouse = self.users, self.users["warehouse"]
        who = {c.showcase: c for c in customers if c.showcase}
        paris = Location.objects.get(code="paris-wh")

        # Parcels on their way meet trouble: the carrier reports one lost, one damaged, one returned.
        troubled = Shipment.objects.filter(
            status__in=[ShipmentStatus.SHIPPED, ShipmentStatus.IN_TRANSIT], order__status=OrderStatus.SHIPPED
        ).order_by("pk")[:3]
        for parcel, code in zip(troubled, ("LOST", "DAMAGED", "RETURNED"), strict=True):
            self._carrier_events(parcel, code)

        # From now on, successive web orders of one customer to one address share a parcel.
        rule = ConsolidationRule(channel=Channel.objects.get(code="web"), window_hours=24)
        stamp(rule, actor=admin, reason="Demo data")
        rule.save()
        first = self._showcase_order(who["consolidated"], "web", [("MUG-STONE-02", 2)], minutes_ago=150)
        self._showcase_order(who["consolidated"], "web", [("TEA-EARLGREY", 3)], minutes_ago=70)
        split = self._showcase_order(
            who["split"], "web", [("LAMP-BRASS", 1), ("TEA-EARLGREY", 2), ("NOTEBOOK-A5", 1)], minutes_ago=240
        )
        short_open = self._showcase_order(
            who["short-open"], "app", [("MUG-STONE-01", 2), ("TOTE-CANVAS", 1)], minutes_ago=200
        )
        substitute = self._showcase_order(
            who["substitute"], "app", [("MUG-STONE-02", 1), ("BOOK-GARDEN", 1)], minutes_ago=190
        )
        delay = self._showcase_order(who["delay"], "app", [("CANDLE-FIG", 2), ("TEA-EARLGREY", 1)], minutes_ago=180)
        cancel = self._showcase_order(
            who["cancel-line"], "app", [("TEE-ORG-M", 2), ("NOTEBOOK-A5", 1)], minutes_ago=170
        )
        gift = self._showcase_order(
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
            self._pick(parcel, warehouse)
        if len(backlog) > 3:
            self._pick(backlog[3], warehouse)
            fulfillment.shipment_pack(shipment=backlog[3], actor=warehouse)
        self._pick(at_paris["consolidated"], warehouse)
        self._pick(at_paris["gift"], warehouse)
        fulfillment.shipment_pack(shipment=at_paris["gift"], actor=warehouse)
        # Three lines from two places: the Paris parcel is on its way, the Lyon store's is not yet.
        self._dispatch(at_paris["split"], label=True)
        self._carrier_events(at_paris["split"], "PICKED_UP", "IN_TRANSIT")

        # Short picks: one waits for support, the others were settled each way with the customer.
        self._pick(at_paris["short-open"], warehouse, short={"MUG-STONE-01": 1}, note="Only one mug in the bin.")

        parcel = at_paris["substitute"]
        self._pick(parcel, warehouse, short={"MUG-STONE-02": 0}, note="Bin empty: last mug was chipped.")
        fulfillment.short_pick_substitute(
            short_pick=ShortPick.objects.get(shipment=parcel),
            actor=u["support2"],
            product=Product.objects.get(sku="MUG-STONE-01"),
            consent_channel="phone",
            consent_note="Happy with the sand mug instead of the ink blue one.",
        )
        self._pick(parcel, warehouse)
        fulfillment.shipment_pack(shipment=parcel, actor=warehouse)

        parcel = at_paris["delay"]
        self._pick(parcel, warehouse, short={"CANDLE-FIG": 1}, note="One candle in the bin, not two.")
        fulfillment.short_pick_delay(
            short_pick=ShortPick.objects.get(shipment=parcel),
            actor=u["support1"],
            promised_at=self.now + datetime.timedelta(days=6),
            consent_channel="email",
            consent_note="Fine to receive the second candle next week.",
        )
        self._dispatch(parcel, label=True)

        parcel = at_paris["cancel-line"]
        self._pick(parcel, warehouse, short={"TEE-ORG-M": 0}, note="No T-shirt M left on the shelf.")
        fulfillment.short_pick_cancel_line(
            short_pick=ShortPick.objects.get(shipment=parcel),
            actor=u["support2"],
            consent_channel="email",
            consent_note="Please cancel the two T-shirts and refund them.",
        )
        self._dispatch(parcel, label=True)
        self._carrier_events(parcel, "PICKED_UP")

        # Click and collect at the Lyon store: the store picks from its own shelves.
        pickups = {
            key: self._showcase_order(who[key], channel, lines, minutes_ago=minutes, pickup=True)
            for key, channel, lines, minutes in (
                ("pickup-ready", "store-lyon", [("CANDLE-FIG", 1), ("SCARF-SILK", 1)], 300),
                ("pickup-collected", "web", [("LAMP-BRASS", 1)], 1500),
                ("pickup-expired", "store-lyon", [("MUG-STONE-01", 2)], 2900),
            )
        }
        for key, order in pickups.items():
            (parcel,) = self._pending_parcels(order)
            self._pick(parcel, warehouse)
            # Demo only: this one's holding period ends at once, so that the expiry job has work.
            days = 0 if key == "pickup-expired" else settings.OMS_PICKUP_HOLD_DAYS
            with override_settings(OMS_PICKUP_HOLD_DAYS=days):
                fulfillment.shipment_ready_for_pickup(shipment=parcel, actor=warehouse)
            if key == "pickup-collected":
                fulfillment.shipment_hand_over(shipment=parcel, actor=warehouse, reason="ID checked at the counter.")
        fulfillment.pickups_remind_and_expire(actor=self.system)

    def _showcase_order(
        self,
        customer: DemoCustomer,
        channel: str,
        skus: list[tuple[str, int]],
        *,
        minutes_ago: int,
        pickup: bool = False,
        gift_message: str = "",
    ) -> Order:
        """A paid order imported from the channel and in preparation (its parcels planned)."""
        self.sequence += 1
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
            shipping = self._shipping("EUR", b2b=False)
        order, created = services.order_create(
            actor=self.api,
            channel=channel,
            external_id=f"DEMO-{channel.upper()}-{SEED}{self.sequence:05d}",
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
                "reference": f"psp_{SEED}_{self.sequence:05d}",
            },
            placed_at=self.now - datetime.timedelta(minutes=minutes_ago),
            tags=["gift"] if gift_message else [],
            locale=customer.locale,
        )
        assert created, order.number
        return services.order_start_preparation(order=order, actor=self.users["warehouse"])

    def _receive_promised_supply(self, order: Order) -> None:
        """A back-ordered line ships once its purchase order arrives: receive what it waits for."""
        from inventory.models import IncomingSupply, Reservation
        from inventory.services import stock_receive

        supply_ids = set(
            Reservation.objects.filter(order=order, state="active", supply__isnull=False).values_list(
                "supply", flat=True
            )
        )
        if not supply_ids:
            return
        # Every order waiting on these purchase orders, this one included (the receipt fills them all).
        waiting = set(
            Reservation.objects.filter(supply__in=supply_ids, state="active").values_list("order_id", flat=True)
        )
        for supply in IncomingSupply.objects.filter(pk__in=supply_ids, status=IncomingSupply.Status.OPEN):
            stock_receive(
                product=supply.product,
                location=supply.location,
                quantity=supply.quantity_open,
                actor=self.users["warehouse"],
                supply=supply,
            )
        # The promises are now reservations on the shelf: sourcing again gives them a parcel.
        preparing = (OrderStatus.IN_PREPARATION, OrderStatus.PARTIALLY_SHIPPED)
        for waiting_order in Order.objects.filter(pk__in=waiting, status__in=preparing).order_by("pk"):
            services.order_reallocate(
                order=waiting_order, actor=self.users["warehouse"], reason="Supplier delivery received"
            )

    def _tracking(self) -> str:
        return f"6A{self.rng.randint(10**9, 10**10 - 1)}"

    def _active_hold(self, order: Order):
        u, rng = self.users, self.rng
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

    def _extras(self, order: Order) -> None:
        u, rng = self.users, self.rng
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

    def _cancel(self, order: Order, spec: dict) -> Order:
        u, rng, variant = self.users, self.rng, spec["variant"]
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

    # --- billing and returns: invoices, credit notes, refunds, a dispute and returns ----------------
    def cockpit_showcase(self, admin) -> None:
        """Cases in every queue and state, SLA policies, automation rules, a fraud review to clear."""
        from orders import cases
        from orders.automation import rule_clean
        from orders.choices import CaseKind
        from orders.models import AutomationRule, Case, SlaPolicy

        u = self.users
        for channel, limits in ((None, (24, 48, 72)), ("amazon-fr", (12, 24, 48))):
            SlaPolicy.objects.get_or_create(
                channel=Channel.objects.get(code=channel) if channel else None,
                defaults={
                    "payment_to_preparation": datetime.timedelta(hours=limits[0]),
                    "preparation_to_dispatch": datetime.timedelta(hours=limits[1]),
                    "refund": datetime.timedelta(hours=limits[2]),
                },
            )
        rules = [
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
        for fields in rules:
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
                actor=self.api,
                channel=extra.pop("channel", "web"),
                external_id=external_id,
                customer={"email": customer.email, "first_name": customer.first_name, "last_name": customer.last_name},
                billing_address=Order.objects.filter(customer=customer).values_list("billing_address", flat=True)[0],
                lines=self._lines("EUR", at_least=2),
                shipping=self._shipping("EUR", b2b=False),
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
        # The same person ordering again under a work address: same phone, same street. The cockpit's
        # "Possible duplicates" lists them for support to merge.
        twin = customers[0]
        phone = twin.phone or "+33 6 41 27 83 90"
        if not twin.phone:
            twin.phone = phone
            stamp(twin, actor=admin, reason="Demo data")
            twin.save(update_fields=["phone"])
        services.order_create(
            actor=self.api,
            channel="phone",
            external_id="phone-twin-1",
            customer={
                "email": f"pro.{twin.email}",
                "first_name": twin.first_name,
                "last_name": twin.last_name,
                "phone": phone,
            },
            billing_address=Order.objects.filter(customer=twin).values_list("billing_address", flat=True)[0],
            lines=self._lines("EUR"),
            shipping=self._shipping("EUR", b2b=False),
            payment={"status": "paid", "method": "card", "reference": "pay-phone-twin-1"},
        )
        from orders.identity import customer_keys_refresh

        customer_keys_refresh(customer=twin, actor=admin, reason="Demo data")
        with _backdated(self.now - datetime.timedelta(days=2)):
            for index, customer in enumerate(customers[2:]):
                place(customer, f"amz-late-{index + 1}", channel="amazon-fr")
        services.order_clear_fraud(
            order=risky[0], actor=u["support2"], reason="Called the cardholder: genuine, travelling abroad."
        )

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

    def billing_showcase(self, admin) -> dict:
        """Money after the parcels, each step by its role and through the billing and returns
        services: payment rows, the billing policies, invoices (one overdue), credit notes, refunds in
        each state, a compensation voucher, a dispute with its evidence pack, and returns in each state.
        Returns the showcase's documents by key."""
        from billing.models import BillingPolicy, InvoiceTrigger, PaymentTerms
        from billing.services import disputes, invoices, payments, refunds

        u, finance = self.users, self.users["finance"]

        # Payment rows for the orders paid before they had rows (bank transfers recorded by finance).
        paid = Order.objects.filter(payments__isnull=True).filter(amount_paid__gt=0).order_by("pk")
        for order in paid.distinct():
            payments.payments_backfill_for_order(order=order, actor=finance)

        # Billing policies (configuration; no service writes them): the web store invoices each parcel
        # when it ships, paid at order; the EDI reseller's accounts are invoiced per order, net 30.
        for code, trigger, terms in (
            ("web", InvoiceTrigger.SHIPMENT, PaymentTerms.IMMEDIATE),
            ("edi-reseller", InvoiceTrigger.ORDER, PaymentTerms.NET_30),
        ):
            channel = Channel.objects.get(code=code)
            if not BillingPolicy.objects.filter(channel=channel).exists():
                policy = BillingPolicy(channel=channel, trigger=trigger, payment_terms=terms)
                stamp(policy, actor=admin, reason="Demo data")
                policy.save()

        # Invoices, as the automatic invoicing issues them (the system user). The oldest account
        # order was invoiced when it was confirmed, weeks ago: net 30 has passed, it is overdue.
        shown: dict = {}
        b2b = list(
            Order.objects.filter(channel__code="edi-reseller", status__in=invoices.INVOICEABLE_STATUSES).order_by(
                "placed_at", "pk"
            )
        )
        for index, order in enumerate(b2b):
            if index == 0:
                with _backdated(order.placed_at + datetime.timedelta(days=1)):
                    shown["overdue"] = invoices.invoice_for_policy(order=order, actor=self.system)
            else:
                invoices.invoice_for_policy(order=order, actor=self.system)
        shipped = [OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED]
        for order in Order.objects.filter(status__in=shipped).exclude(channel__code="edi-reseller").order_by("pk"):
            parcels = (
                Shipment.objects.filter(lines__order_line__order=order, shipped_at__isnull=False)
                .exclude(status=ShipmentStatus.CANCELED)
                .distinct()
                .order_by("shipped_at", "pk")
            )
            for parcel in parcels:
                invoices.invoice_for_policy(order=order, actor=self.system, shipment=parcel)
            if not order.invoices.exists():
                # Shipped by hand (a test order, a line sent ahead): its shipped units.
                invoices.invoice_issue(order=order, actor=self.system)

        # Delivered web orders paid by card, each used once below.
        candidates = [
            order
            for order in Order.objects.filter(
                status=OrderStatus.DELIVERED, channel__code__in=["web", "app", "phone"], is_test=False, currency="EUR"
            )
            .prefetch_related("lines")
            .order_by("pk")
            if order.invoices.exists()
            and order.payments.filter(amount_captured__gt=0).exists()
            and not order.shipments.filter(kind="pickup").exists()
        ]

        def take(predicate=lambda order: True) -> Order:
            for order in candidates:
                if predicate(order):
                    candidates.remove(order)
                    return order
            raise RuntimeError("The demo plan has no order left for the billing showcase.")

        def settle(refund, approver=None):
            approver = approver or (u["finance-manager"] if refunds.needs_second_approver(refund) else u["finance"])
            refunds.refund_approve(refund=refund, actor=approver, note="Checked against the order.")
            return refunds.refund_process(refund=refund, actor=approver)

        # Kept for the return inspected line by line: an order of three lines or more.
        to_inspect = take(lambda o: len([line for line in o.lines.all() if line.quantity_shipped]) >= 3)

        # A pricing error, credited by lines and refunded to store credit.
        order = take(lambda o: len(o.lines.all()) >= 2)
        invoice = order.invoices.order_by("pk").first()
        line = invoice.lines.filter(order_line__isnull=False).order_by("position").first()
        shown["credit_by_lines"] = invoices.credit_note_issue(
            invoice=invoice,
            actor=finance,
            reason="pricing_error",
            lines={line.pk: 1},
            note="The promotion price was not applied to one unit.",
        )
        settle(
            refunds.refund_request(
                order=order,
                actor=u["support1"],
                amount=shown["credit_by_lines"].total_gross,
                reason="pricing_error",
                method="store_credit",
                credit_note=shown["credit_by_lines"],
                note="Customer prefers store credit.",
            )
        )

        # A goodwill gesture for a late parcel: a credit note by amount, refunded to the card.
        order = take()
        shown["credit_by_amount"] = invoices.credit_note_issue(
            invoice=order.invoices.order_by("pk").first(),
            actor=finance,
            reason="goodwill",
            amount="8.00",
            note="Parcel arrived three days late.",
        )
        shown["goodwill"] = settle(
            refunds.refund_request(
                order=order,
                actor=u["support2"],
                amount="8.00",
                reason="goodwill",
                credit_note=shown["credit_by_amount"],
                note="Parcel arrived three days late.",
            )
        )

        # A compensation voucher for a damaged item (on top of what was paid).
        order = take()
        settle(
            refunds.refund_request(
                order=order,
                actor=u["support2"],
                amount="15.00",
                reason="compensation",
                method="voucher",
                note="Mug chipped on arrival; customer keeps it.",
            )
        )

        # A large refund finance asked for: a finance manager has to approve it.
        threshold = refunds.second_approver_threshold()
        order = take(lambda o: o.amount_paid - o.amount_refunded > threshold + 10)
        shown["large_refund"] = refunds.refund_request(
            order=order,
            actor=finance,
            amount=min(order.amount_paid - order.amount_refunded, threshold + 50),
            reason="seller_cancellation",
            note="Wrong colour sent; customer keeps the goods at our expense.",
        )

        # The customer's bank disputes a delivered order's card payment: the evidence pack answers it.
        order = take(lambda o: o.shipments.filter(delivered_at__isnull=False, tracking_updates__isnull=False).exists())
        payment = order.payments.filter(amount_captured__gt=0).order_by("pk").first()
        shown["dispute"], _created = disputes.dispute_open(
            payment=payment,
            provider_reference=f"dp_demo_{order.number[-6:]}",
            reason="product_not_received",
            amount=None,
            respond_by=self.now + datetime.timedelta(days=10),
            actor=self.system,
        )
        disputes.dispute_evidence_pack(dispute=shown["dispute"], actor=finance)

        shown.update(self._returns(take, to_inspect))
        return shown

    def _returns(self, take, to_inspect: Order) -> dict:
        """Returns in each state: requested, approved (label), inspected (2 of 3 lines resellable:
        credited, refund requested) and refused."""
        from returns import services as returns

        u = self.users

        def request(order: Order, reason: str, comment: str, count: int | None = None):
            lines = list(order.lines.filter(quantity_shipped__gt=0).order_by("line_number"))[:count]
            return returns.return_request(
                order=order,
                actor=self.api,  # the web store's returns page
                lines=[{"line": line, "quantity": 1} for line in lines],
                reason=reason,
                customer_comment=comment,
            )

        requested = request(take(), "wrong_size", "Too small, I will order the L instead.", 1)
        approved = request(take(), "changed_mind", "Not the colour I expected.", 1)
        returns.return_approve(request=approved, actor=u["support2"])
        inspected = request(
            to_inspect,
            "defective",
            "Two items are fine but I no longer need them; one arrived broken.",
            3,
        )
        returns.return_approve(request=inspected, actor=u["support2"])
        returns.return_receive(request=inspected, actor=u["warehouse"], note="Parcel received at the dock.")
        lines = list(inspected.lines.order_by("pk"))
        results = {line.pk: {"resellable": line.quantity} for line in lines[:2]}
        results[lines[2].pk] = {"damaged": lines[2].quantity}
        returns.return_inspect(
            request=inspected, actor=u["warehouse"], results=results, note="One unit broken in the parcel."
        )
        refused = request(take(), "changed_mind", "Used it once, not for me.", 1)
        returns.return_refuse(
            request=refused, actor=u["support2"], reason="The item was used: it cannot be resold as new."
        )
        return {"return_requested": requested, "return_approved": approved, "return_inspected": inspected}


class Command(BaseCommand):
    help = (
        "Create demo users, channels, customers, ~250 orders in every status and their parcels in every state "
        "(DEMO ONLY; idempotent)."
    )

    def handle(self, *args, **options):
        started = timezone.now()
        self._sync_roles()
        users, created_users = self._users()
        api_client, token = self._api_client()
        demo = Demo(users=users, api_client=api_client, rng=random.Random(SEED))
        customers = demo.build_customers()
        if Customer.objects.filter(email__in=[c.email for c in customers]).exists():
            self.stdout.write("Demo data already present: nothing created.")
        else:
            # One event log line per step would bury the summary: quiet while seeding.
            quiet = [
                logging.getLogger(name)
                for name in (
                    "orders.events",
                    "orders.cases",
                    "orders.automation",
                    "inventory",
                    "fulfillment",
                    "billing",
                    "returns",
                    "weasyprint",
                )
            ]
            levels = [logger.level for logger in quiet]
            for logger in quiet:
                logger.setLevel(logging.WARNING)
            try:
                # The automatic invoicing waits for the commit: the demo issues its invoices itself.
                with override_settings(OMS_INVOICE_AUTO=False), transaction.atomic():
                    demo.create_channels(users["admin"])
                    demo.create_catalog(users["admin"])
                    demo.create_customers(customers, users["admin"])
                    for spec in demo.plan(customers):
                        order = demo.create_order(spec)
                        demo.drive(order, spec)
                    demo.fulfillment_showcase(customers, users["admin"])
                    demo.billing_showcase(users["admin"])
                    demo.cockpit_showcase(users["admin"])
            finally:
                for logger, level in zip(quiet, levels, strict=True):
                    logger.setLevel(level)
            seconds = (timezone.now() - started).total_seconds()
            self.stdout.write(self.style.SUCCESS(f"Demo data created in {seconds:.1f} s."))
        self._print_summary(users, created_users, token)

    def _sync_roles(self) -> None:
        for app_config in apps.get_app_configs():
            create_permissions(app_config, verbosity=0)
        roles.sync_roles(Group, Permission)

    def _users(self):
        user_model = get_user_model()
        users, created_users = {}, set()
        for username, role, first, last in STAFF:
            user, created = user_model.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@oms.example",
                    "is_staff": True,
                    "is_superuser": role == roles.ADMINISTRATOR,
                },
            )
            if created:
                user.set_password(PASSWORD.format(username=username))
                user.save(update_fields=["password"])
                created_users.add(username)
            user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users, created_users

    def _api_client(self):
        user, created = get_user_model().objects.get_or_create(username=API_USERNAME, defaults={"first_name": "API"})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=roles.API_CLIENT))
        token, _ = Token.objects.get_or_create(user=user)
        return user, token

    def _print_summary(self, users, created_users, token) -> None:
        out = self.stdout
        counts = dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by())
        out.write("")
        out.write("Orders per status")
        out.write("-" * 34)
        for status in OrderStatus:
            out.write(f"  {status.label:<22}{counts.get(status.value, 0):>8}")
        out.write("-" * 34)
        out.write(f"  {'Total':<22}{sum(counts.values()):>8}")
        out.write("")
        out.write(self.style.WARNING("DEMO ONLY — these accounts and passwords are public. Never in production."))
        out.write(f"  {'user':<17}{'role':<17}password")
        for username, role, _first, _last in STAFF:
            note = "" if username in created_users else "  (set when the user was created)"
            out.write(f"  {username:<17}{role:<17}{PASSWORD.format(username=username)}{note}")
        out.write(f"  {API_USERNAME:<17}{roles.API_CLIENT:<17}Authorization: Token {token.key}")
        out.write("  Cockpit: http://127.0.0.1:8000/admin/")
        if settings.DEBUG is False:
            out.write(self.style.WARNING("DEBUG is off: is this really a demo machine?"))

"""The demo's customers: French and English shoppers, business accounts on terms, two test accounts
and the fulfillment showcase's own customers. Drawn first (the command checks whether they exist),
saved later inside the seeding transaction."""

import random
import unicodedata
from dataclasses import dataclass, field

from oms.core.history import stamp
from orders.models import Customer

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


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "")


def customers_build(rng: random.Random) -> list[DemoCustomer]:
    """The customers, drawn in a fixed order from `rng` (nothing saved yet)."""
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


def customers_create(customers: list[DemoCustomer], admin) -> None:
    """The customer records (master data: no service exists for them, saved directly)."""
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

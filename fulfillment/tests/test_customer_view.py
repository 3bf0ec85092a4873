"""The customer's tracking page (/track/<token>/): each parcel with its tracking and contents, what is
still to come, in the customer's language; a bad link is a plain 404 page."""

import datetime
import html
import re

import pytest
from django.core import signing
from django.utils import formats, timezone, translation

from fulfillment import services
from fulfillment.links import order_number_from_token, tracking_token, tracking_url
from fulfillment.models import Shipment, ShortPick
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from inventory.models import Location
from inventory.services import stock_receive
from oms.core.actors import get_system_user

pytestmark = pytest.mark.django_db

ONE_MUG = [{"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price": "12.00", "tax_rate": "0.20"}]


def text_of(fragment: str) -> str:
    """What a reader sees: tags dropped, entities decoded, white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def parcels_of(page: str) -> list[str]:
    return [text_of(section) for section in re.findall(r'<section class="card parcel".*?</section>', page, re.S)]


def remaining_of(page: str) -> str:
    found = re.search(r'<section class="card" data-testid="remaining">.*?</section>', page, re.S)
    return text_of(found.group(0)) if found else ""


def one_parcel_shipped_one_mug_delayed(**overrides):
    """Paris ships 1 mug + the book, the second mug is delayed (none left anywhere), Lyon still prepares the T-shirt."""
    world = make_two_locations(mug=2)
    order = prepared_order(**overrides)
    paris = Shipment.objects.get(order=order, location=world.paris)
    lyon = Shipment.objects.get(order=order, location=world.lyon)
    mug = paris.lines.get(order_line__sku="MUG-1")
    book = paris.lines.get(order_line__sku="BOOK-1")
    services.shipment_confirm_picks(shipment=paris, actor=world.warehouse, picked={mug.pk: 1, book.pk: 1})
    promised = timezone.now() + datetime.timedelta(days=10)
    services.short_pick_delay(
        short_pick=ShortPick.objects.get(shipment=paris), actor=world.support, promised_at=promised
    )
    services.shipment_pack(shipment=paris, actor=world.warehouse)
    paris = services.shipment_dispatch(shipment=paris, actor=world.warehouse)
    services.carrier_webhook_receive(
        carrier="sandbox",
        payload={
            "events": [
                {
                    "id": f"{paris.tracking_number}-transit",
                    "tracking_number": paris.tracking_number,
                    "status": "IN_TRANSIT",
                    "occurred_at": timezone.now().isoformat(),
                    "location": "Lyon hub",
                }
            ]
        },
        actor=get_system_user(),
    )
    paris.refresh_from_db()
    order.refresh_from_db()
    return order, paris, lyon, promised


def test_the_page_shows_both_parcels_and_what_is_still_to_come(client):
    order, paris, lyon, promised = one_parcel_shipped_one_mug_delayed()

    response = client.get(f"/track/{tracking_token(order)}/")

    assert response.status_code == 200
    assert response["Content-Language"] == "en"
    assert response["Referrer-Policy"] == "no-referrer" and "no-cache" in response["Cache-Control"]
    page = response.content.decode()
    header = text_of(page.split('data-testid="parcel"')[0])
    assert f"Order {order.number}" in header and "Partially shipped" in header

    shipped, preparing = parcels_of(page)
    assert shipped.startswith("Parcel 1 of 2 On its way")
    assert f"Carrier: Sandbox Parcel Tracking number: {paris.tracking_number}" in shipped
    assert "Contents 1 × Mug 1 × Book" in shipped
    assert "Tracking On its way · Lyon hub" in shipped
    assert f'href="{paris.tracking_url}"' in page
    assert preparing == "Parcel 2 of 2 Being prepared Contents 1 × T-shirt"

    with translation.override("en"):
        date = formats.date_format(timezone.localtime(promised), "DATE_FORMAT")
    assert remaining_of(page) == (
        "Still to come These items are not in a parcel yet. We will let you know when they leave. "
        f"1 × Mug Expected by {date}"
    )
    # Customer-facing labels only: no internal status codes, no shipment numbers.
    for internal in (paris.number, lyon.number, "in_transit", "short_picked", "pending", "picking"):
        assert internal not in page


def test_the_page_speaks_the_order_language_unless_asked_otherwise(client):
    order, paris, _lyon, promised = one_parcel_shipped_one_mug_delayed(locale="fr")
    url = f"/track/{tracking_token(order)}/"

    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200 and response["Content-Language"] == "fr"
    page = response.content.decode()
    assert '<html lang="fr">' in page
    assert f"Commande {order.number}" in text_of(page) and "Partiellement expédiée" in text_of(page)
    shipped, preparing = parcels_of(page)
    assert shipped.startswith("Colis 1 sur 2 En route")
    assert f"Numéro de suivi : {paris.tracking_number}" in shipped and "Contenu 1 × Mug 1 × Book" in shipped
    assert preparing == "Colis 2 sur 2 En cours de préparation Contenu 1 × T-shirt"
    with translation.override("fr"):
        date = formats.date_format(timezone.localtime(promised), "DATE_FORMAT")
    assert remaining_of(page).startswith("Encore à venir") and f"Attendu d'ici le {date}" in remaining_of(page)

    english = client.get(f"{url}?lang=en")
    assert english["Content-Language"] == "en"
    assert parcels_of(english.content.decode())[1] == "Parcel 2 of 2 Being prepared Contents 1 × T-shirt"
    # A language we do not have falls back to the order's.
    assert client.get(f"{url}?lang=xx")["Content-Language"] == "fr"


def test_a_pickup_shows_the_store_and_until_when_it_is_held(client):
    world = make_two_locations()
    store = Location.objects.create(
        code="lyon-store", name="Lyon store", kind="store", country="FR", city="Lyon", store_pickup=True, priority=5
    )
    stock_receive(product=world.mug, location=store, quantity=3, actor=get_system_user())
    order = prepared_order(lines=ONE_MUG, shipping={"method": "click & collect", "pickup_location": "lyon-store"})
    shipment = Shipment.objects.get(order=order)
    services.shipment_confirm_picks(shipment=shipment, actor=world.warehouse, picked={shipment.lines.get().pk: 1})
    shipment = services.shipment_ready_for_pickup(shipment=shipment, actor=world.warehouse)

    page = client.get(tracking_url(order)).content.decode()

    expires = timezone.localtime(shipment.pickup_expires_at)
    with translation.override("en"):
        until = f"{formats.date_format(expires, 'DATE_FORMAT')} ({formats.time_format(expires, 'TIME_FORMAT')})"
    [parcel] = parcels_of(page)
    assert parcel == (
        f"Your order for pickup Ready for pickup Pick up at Lyon store Please collect it by {until}. Contents 1 × Mug"
    )
    assert "Tracking number" not in parcel


def test_a_bad_or_tampered_link_is_a_404_page(client):
    world = make_two_locations()
    order = prepared_order()
    token = tracking_token(order)
    assert client.get(f"/track/{token}/").status_code == 200
    value, signature = token.split(":")
    other_value = signing.Signer(salt="order-tracking").sign_object("ORD-2026-999999").split(":")[0]
    tampered = [
        f"{value}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",  # signature changed
        f"{other_value}:{signature}",  # another order's number with this order's signature
        signing.Signer(salt="something-else").sign_object(order.number),  # signed for another purpose
        signing.Signer(salt="order-tracking").sign_object("ORD-2026-999999"),  # a real signature, no such order
        value,  # no signature
        "nonsense",
        "a:b:c",
    ]
    for bad in tampered:
        response = client.get(f"/track/{bad}/")
        assert response.status_code == 404, bad
        page = response.content.decode()
        assert "Tracking link not found" in page and order.number not in page
    assert world.paris.shipments.filter(order=order).exists()  # the order is there all along


def test_the_link_is_absolute_stable_and_reversible(settings):
    settings.OMS_PUBLIC_URL = "https://shop.example/"
    world = make_two_locations()
    order = prepared_order()
    assert world.paris.shipments.filter(order=order).exists()

    url = tracking_url(order)

    assert url == f"https://shop.example/track/{tracking_token(order)}/"
    assert tracking_token(order) == tracking_token(order)  # every email carries the same link
    assert order_number_from_token(tracking_token(order)) == order.number

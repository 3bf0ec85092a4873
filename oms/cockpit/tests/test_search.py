"""The global search box: one hit opens it, several list, and every lookup is an indexed exact match."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from fulfillment import services as fulfillment
from fulfillment.models import Shipment
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from oms.cockpit import roles
from oms.cockpit.search import cockpit_search
from oms.core.actors import get_system_user
from orders import cases, identity, services
from orders.choices import CaseKind, HoldReason
from orders.models import Case
from orders.tests.factories import make_user

pytestmark = pytest.mark.django_db

SEARCH = "/admin/search/"


def order_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def labelled_parcel(world):
    order = prepared_order()
    parcel = Shipment.objects.filter(order=order).order_by("pk").first()
    fulfillment.shipment_start_picking(shipment=parcel, actor=world.warehouse)
    parcel = fulfillment.shipment_create_label(shipment=parcel, actor=world.warehouse)
    assert parcel.tracking_number
    return order, parcel


def test_a_tracking_number_opens_its_order(client):
    world = make_two_locations()
    order, parcel = labelled_parcel(world)
    prepared_order()  # another order with its own parcels
    client.force_login(make_user(roles.SUPPORT_L1))

    response = client.get(SEARCH, {"q": f"  {parcel.tracking_number.lower()} "})

    assert response.status_code == 302 and response.url == order_url(order)


@pytest.mark.parametrize("field", ["number", "digits", "external_id"])
def test_an_order_is_found_by_number_digits_or_external_id(client, make_order, field):
    order = make_order()
    make_order()
    term = {
        "number": order.number.lower(),
        "digits": str(int(order.number.rsplit("-", 1)[1])),
        "external_id": order.external_id,
    }[field]
    client.force_login(make_user(roles.SUPPORT_L1))

    response = client.get(SEARCH, {"q": term})

    # The digits also name a case or customer nowhere here: exactly one hit.
    assert response.status_code == 302 and response.url == order_url(order)


def test_a_case_number_opens_the_case_for_who_works_it_only(client, make_order):
    order = make_order()
    services.order_hold(order=order, actor=get_system_user(), reason=HoldReason.FRAUD_REVIEW, note="Card")
    case = Case.objects.get(source_key=f"fraud:{order.pk}")  # one fraud case per order
    assert case.kind == CaseKind.FRAUD_REVIEW

    client.force_login(make_user(roles.SUPPORT_L2))
    found = client.get(SEARCH, {"q": case.number})
    assert found.status_code == 302 and found.url == reverse("admin:orders_case_change", args=[case.pk])

    warehouse = make_user(roles.WAREHOUSE)
    client.force_login(warehouse)
    hidden = client.get(SEARCH, {"q": case.number})
    assert hidden.status_code == 200 and 'id="oms-search-empty"' in hidden.content.decode()
    assert cockpit_search(term=case.number, user=warehouse) == []


def test_a_customer_is_found_by_phone_in_any_writing(client, make_order):
    order = make_order(customer={"email": "zoe@example.com", "first_name": "Zoé", "phone": "06 12 34 56 78"})
    customer = identity.customer_keys_refresh(customer=order.customer)
    client.force_login(make_user(roles.SUPPORT_L1))

    response = client.get(SEARCH, {"q": "+33 6 12 34 56 78"})

    assert response.status_code == 302
    assert response.url == reverse("admin:orders_customer_change", args=[customer.pk])


def test_several_hits_are_listed_on_a_results_page(client, make_order):
    order = make_order(customer={"email": "max@example.com"})
    client.force_login(make_user(roles.SUPPORT_L1))

    # The e-mail names the order and the customer: two hits, one page.
    response = client.get(SEARCH, {"q": "MAX@example.com"})

    content = response.content.decode()
    assert response.status_code == 200
    assert [hit.kind for hit in response.context["hits"]] == ["order", "customer"]
    assert order_url(order) in content
    assert reverse("admin:orders_customer_change", args=[order.customer_id]) in content


def test_nothing_found_says_so_and_keeps_the_term_in_the_box(client, make_order):
    make_order()
    client.force_login(make_user(roles.SUPPORT_L1))

    response = client.get(SEARCH, {"q": "ORD-1999"})

    content = response.content.decode()
    assert response.status_code == 200 and 'id="oms-search-empty"' in content
    assert 'name="q" value="ORD-1999"' in content


def test_search_uses_exact_indexed_lookups_only(client, make_order):
    make_order()
    user = make_user(roles.SUPPORT_L2)

    with CaptureQueriesContext(connection) as queries:
        cockpit_search(term="06 12 34 56 78", user=user)
        cockpit_search(term="ext-1", user=user)

    sql = [q["sql"].upper() for q in queries if "SELECT" in q["sql"].upper()]
    assert sql and not [s for s in sql if " LIKE " in s]


def test_the_search_box_is_in_the_header_of_cockpit_pages_only_when_logged_in(client, make_order):
    order = make_order()
    login = client.get("/admin/login/").content.decode()
    assert 'id="oms-global-search"' not in login
    assert client.get(SEARCH, {"q": order.number}).status_code == 302  # to the login page
    client.force_login(make_user(roles.WAREHOUSE))
    for url in ("/admin/", "/admin/orders/case/", order_url(order)):
        assert 'id="oms-global-search"' in client.get(url).content.decode(), url


def test_a_user_without_order_access_finds_no_orders(make_order):
    order = make_order()
    nobody = make_user()  # staff, no role

    assert cockpit_search(term=order.number, user=nobody) == []


def test_a_case_number_digits_alone_find_this_years_case(make_order):
    order = make_order()
    case, _ = cases.case_open(
        kind=CaseKind.ADDRESS_CHECK, source_key="x:1", title="Check", actor=get_system_user(), order=order
    )
    user = make_user(roles.SUPPORT_L1)

    hits = cockpit_search(term=str(int(case.number.rsplit("-", 1)[1])), user=user)

    assert ("case", case.number) in [(hit.kind, hit.label) for hit in hits]

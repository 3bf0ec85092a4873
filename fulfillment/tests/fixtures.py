"""Two warehouses with different stock, so that a three-line order ships as two parcels."""

from dataclasses import dataclass

from inventory.models import Location, Product, StockItem
from inventory.services import stock_receive
from oms.cockpit.roles import SUPPORT_L2, WAREHOUSE
from oms.core.actors import get_system_user
from orders import services as orders
from orders.tests.factories import ChannelFactory, make_user, order_payload


@dataclass
class World:
    paris: Location
    lyon: Location
    mug: Product
    tee: Product
    book: Product
    cup: Product
    warehouse: object
    support: object


def make_two_locations(*, mug=20, tee=20, book=20, cup=20) -> World:
    system = get_system_user()
    ChannelFactory()
    paris = Location.objects.create(
        code="paris-wh", name="Paris warehouse", kind="warehouse", country="FR", city="Paris", priority=10
    )
    lyon = Location.objects.create(
        code="lyon-wh", name="Lyon warehouse", kind="warehouse", country="FR", city="Lyon", priority=20
    )
    mug_p = Product.objects.create(sku="MUG-1", name="Mug", weight_grams=350, hs_code="691200", country_of_origin="PT")
    tee_p = Product.objects.create(sku="TEE-1", name="T-shirt", weight_grams=200, hs_code="610910")
    book_p = Product.objects.create(sku="BOOK-1", name="Book", weight_grams=500)
    cup_p = Product.objects.create(sku="CUP-1", name="Cup", weight_grams=300)
    # MUG and BOOK in Paris, TEE only in Lyon: the order of order_payload() needs both.
    for product, location, units, bin_location in (
        (mug_p, paris, mug, "A-10-1"),
        (book_p, paris, book, "A-2-3"),
        (cup_p, paris, cup, "B-1-1"),
        (tee_p, lyon, tee, "C-4-2"),
    ):
        if units:
            stock_receive(product=product, location=location, quantity=units, actor=system)
        StockItem.objects.filter(product=product, location=location).update(bin_location=bin_location)
    return World(
        paris=paris,
        lyon=lyon,
        mug=mug_p,
        tee=tee_p,
        book=book_p,
        cup=cup_p,
        warehouse=make_user(WAREHOUSE),
        support=make_user(SUPPORT_L2),
    )


def prepared_order(*, actor=None, **overrides):
    """A paid order of MUG ×2, TEE ×1, BOOK ×1, in preparation (its shipments planned)."""
    actor = actor or get_system_user()
    order, _ = orders.order_create(actor=actor, **order_payload(**overrides))
    return orders.order_start_preparation(order=order, actor=actor)

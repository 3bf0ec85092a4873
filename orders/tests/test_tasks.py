import datetime

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from oms.cockpit import roles
from orders.choices import OrderStatus
from orders.models import Order
from orders.tasks import orders_complete_due
from orders.tests.factories import make_user
from orders.tests.states import order_in_state


@pytest.mark.django_db
def test_periodic_close_acts_as_the_system_user(channel):
    order = order_in_state(OrderStatus.DELIVERED, actor=make_user(roles.ADMINISTRATOR))

    with time_machine.travel(timezone.now() + datetime.timedelta(days=settings.OMS_RETURN_WINDOW_DAYS + 1)):
        closed = orders_complete_due.apply().get()
        again = orders_complete_due.apply().get()

    assert (closed, again) == (1, 0)
    order = Order.objects.get(pk=order.pk)
    assert order.status == OrderStatus.COMPLETED
    event = order.events.order_by("-id").first()
    assert event.actor.username == settings.OMS_SYSTEM_USERNAME
    assert event.reason == "Return window elapsed"
    assert order.history.order_by("-history_id").first().history_user.username == settings.OMS_SYSTEM_USERNAME

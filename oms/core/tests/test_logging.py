import json
import logging

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from oms.cockpit import roles
from oms.core.logging import ContextFilter, bind_order
from orders import services
from orders.tests.factories import ChannelFactory, make_catalog, make_user, order_payload


def _format(record: logging.LogRecord) -> dict:
    config = settings.LOGGING["formatters"]["json"]
    formatter = JsonFormatter(config["fmt"], rename_fields=config["rename_fields"])
    ContextFilter().filter(record)
    return json.loads(formatter.format(record))


def test_log_lines_are_json_with_the_bound_order_number():
    record = logging.LogRecord("oms.test", logging.INFO, __file__, 1, "label printed", None, None)
    with bind_order("ORD-2026-000042"):
        line = _format(record)
    assert line["message"] == "label printed"
    assert line["level"] == "INFO"
    assert line["order_number"] == "ORD-2026-000042"


@pytest.mark.django_db
def test_service_logs_carry_the_order_number(caplog):
    ChannelFactory()
    make_catalog()
    api = make_user(roles.API_STORE_FRONT)
    caplog.set_level(logging.INFO, logger="orders.events")
    with caplog.at_level(logging.INFO, logger="orders.events"):
        order, _ = services.order_create(actor=api, **order_payload())
    records = [r for r in caplog.records if r.name == "orders.events"]
    assert records, "order events are logged"
    for record in records:
        assert _format(record)["order_number"] == order.number

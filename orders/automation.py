"""Automation rules: when an event happens and the conditions hold, tag, hold, open a case or notify.

Rules are rows (`AutomationRule`), edited in the cockpit with their history. `rules_on_events` runs
in the transaction of the change (called by `events_record`): for each new event whose type maps to
a rule trigger, the active rules of that trigger are checked and each matching rule fires once per
event. The `RuleFiring` row is unique per (rule, event), so a replay or a second detection can never
fire it twice. A firing records what each action did, and a `rule_fired` event on the order's
timeline says which rule acted. The actions run as the system user through the same services as a
person would; their own events do not start rules again (no chains, no loops).
"""

import contextvars
import logging
from decimal import Decimal

from django.db import IntegrityError, transaction

from integrations.services import notification_queue
from oms.core.actors import get_system_user
from oms.core.errors import ApplicationError, ValidationError
from oms.core.history import stamp
from oms.core.money import quantize
from orders.cases import case_open
from orders.choices import HoldReason, OrderEventType, RuleTrigger
from orders.events import events_record
from orders.models import AutomationRule, Order, OrderEvent, RuleFiring
from orders.services import order_hold, order_tag

logger = logging.getLogger("orders.automation")

TRIGGER_EVENTS: dict[str, set[str]] = {
    RuleTrigger.ORDER_PLACED: {OrderEventType.CREATED, OrderEventType.IMPORTED},
    RuleTrigger.ORDER_PAID: {OrderEventType.PAYMENT_RECORDED},
    RuleTrigger.ORDER_CONFIRMED: {OrderEventType.CONFIRMED, OrderEventType.ACCEPTED_ON_TERMS},
    RuleTrigger.HOLD_PLACED: {OrderEventType.HOLD_PLACED},
    RuleTrigger.ORDER_SHIPPED: {OrderEventType.SHIPPED},
    RuleTrigger.SHIPMENT_LATE: {OrderEventType.SLA_BREACHED},
    RuleTrigger.PARCEL_EXCEPTION: {OrderEventType.PARCEL_EXCEPTION},
    RuleTrigger.ORDER_DELIVERED: {OrderEventType.DELIVERED},
    RuleTrigger.ORDER_CANCELED: {OrderEventType.CANCELED},
    RuleTrigger.RETURN_REQUESTED: {OrderEventType.RETURN_REQUESTED},
    RuleTrigger.RETURN_RECEIVED: {OrderEventType.RETURN_RECEIVED},
    RuleTrigger.REFUND_REQUESTED: {OrderEventType.REFUND_REQUESTED},
    RuleTrigger.DISPUTE_OPENED: {OrderEventType.DISPUTE_OPENED},
}
EVENT_TRIGGERS: dict[str, list[str]] = {}
for _trigger, _types in TRIGGER_EVENTS.items():
    for _type in _types:
        EVENT_TRIGGERS.setdefault(_type, []).append(_trigger)


def _event_matches_trigger(event: OrderEvent, trigger: str) -> bool:
    if trigger == RuleTrigger.ORDER_PAID:
        return bool(event.payload.get("captured"))  # an authorization is not a payment
    if trigger == RuleTrigger.SHIPMENT_LATE:
        return event.payload.get("stage") in {"preparation", "dispatch"}
    return True


# Set while a rule's actions run: the events they write do not start rules again.
_firing = contextvars.ContextVar("orders_automation_firing", default=False)


def _split(text: str, *, upper=False) -> set[str]:
    values = {part.strip() for part in (text or "").split(",") if part.strip()}
    return {value.upper() for value in values} if upper else {value.lower() for value in values}


class _OrderFacts:
    """What conditions read about one order, each fetched once and only if a rule asks."""

    def __init__(self, order: Order):
        self.order = order
        self._skus = None
        self._customer_tags = None

    @property
    def skus(self) -> set[str]:
        if self._skus is None:
            self._skus = {sku.lower() for sku in self.order.lines.values_list("sku", flat=True)}
        return self._skus

    @property
    def customer_tags(self) -> set[str]:
        if self._customer_tags is None:
            self._customer_tags = set(self.order.customer.tags.values_list("name", flat=True))
        return self._customer_tags

    @property
    def country(self) -> str:
        address = self.order.shipping_address or self.order.billing_address or {}
        return str(address.get("country", "")).upper()


def _money(amount, order: Order) -> str:
    return f"{quantize(amount, order.currency)} {order.currency}"


def rule_matches(rule: AutomationRule, facts: _OrderFacts) -> tuple[bool, list[str]]:
    """Whether every condition set on the rule holds, and the facts that made it match."""
    order = facts.order
    matched = []
    if order.is_test and not rule.include_test_orders:
        return False, []
    channel_ids = {channel.pk for channel in rule.channels.all()}
    if channel_ids:
        if order.channel_id not in channel_ids:
            return False, []
        matched.append(f"channel {order.channel.code}")
    if rule.min_total is not None:
        if order.total_gross < rule.min_total:
            return False, []
        matched.append(f"total {_money(order.total_gross, order)} ≥ {_money(rule.min_total, order)}")
    if rule.max_total is not None:
        if order.total_gross > rule.max_total:
            return False, []
        matched.append(f"total {_money(order.total_gross, order)} ≤ {_money(rule.max_total, order)}")
    countries = _split(rule.countries, upper=True)
    if countries:
        if facts.country not in countries:
            return False, []
        matched.append(f"country {facts.country}")
    tags = _split(rule.customer_tags)
    if tags:
        common = tags & facts.customer_tags
        if not common:
            return False, []
        matched.append(f"customer tag {', '.join(sorted(common))}")
    skus = _split(rule.skus)
    if skus:
        common = skus & facts.skus
        if not common:
            return False, []
        matched.append(f"SKU {', '.join(sorted(common))}")
    if rule.min_risk_score is not None:
        if order.risk_score is None or order.risk_score < rule.min_risk_score:
            return False, []
        matched.append(f"risk score {order.risk_score} ≥ {rule.min_risk_score}")
    return True, matched


def rules_on_events(*, order: Order, events, actor) -> None:
    """Fire the matching rules for an order's new events (called by events_record)."""
    if _firing.get():
        return
    wanted = [(event, trigger) for event in events for trigger in EVENT_TRIGGERS.get(event.type, ())]
    wanted = [(event, trigger) for event, trigger in wanted if _event_matches_trigger(event, trigger)]
    if not wanted:
        return
    triggers = {trigger for _, trigger in wanted}
    rules = list(
        AutomationRule.objects.filter(is_active=True, trigger__in=triggers)
        .prefetch_related("channels")
        .order_by("priority", "name")
    )
    if not rules:
        return
    facts = _OrderFacts(order)
    for event, trigger in wanted:
        for rule in rules:
            if rule.trigger != trigger:
                continue
            ok, matched = rule_matches(rule, facts)
            if ok:
                _fire(rule, order=order, event=event, matched=matched)


def _fire(rule: AutomationRule, *, order: Order, event: OrderEvent, matched: list[str]) -> RuleFiring | None:
    system = get_system_user()
    firing = RuleFiring(rule=rule, order=order, event=event)
    try:
        with transaction.atomic():
            firing.save(force_insert=True)
    except IntegrityError:  # this rule already fired on this event
        return None
    token = _firing.set(True)
    try:
        done = [_run_action(name, action, rule=rule, order=order, actor=system) for name, action in _actions(rule)]
    finally:
        _firing.reset(token)
    firing.actions = done
    firing.error = "; ".join(item["error"] for item in done if item.get("error"))
    firing.save(update_fields=["actions", "error"])
    events_record(
        order=order,
        actor=system,
        events=[
            (
                OrderEventType.RULE_FIRED,
                rule.name,
                {"rule": rule.pk, "rule_name": rule.name, "on": event.type, "matched": matched, "actions": done},
            )
        ],
    )
    logger.info("rule fired", extra={"rule": rule.name, "event": event.type})
    return firing


def _actions(rule: AutomationRule):
    if rule.risk_score is not None:
        yield "risk_score", _raise_risk
    if rule.add_tag:
        yield "tag", _tag
    if rule.hold_reason:
        yield "hold", _hold
    if rule.case_kind:
        yield "case", _case
    if rule.notify_emails:
        yield "notify", _notify


def _run_action(name: str, action, *, rule, order, actor) -> dict:
    try:
        with transaction.atomic():
            return {"action": name, **action(rule=rule, order=order, actor=actor)}
    except ApplicationError as exc:  # e.g. the order already has this hold: recorded, the rest goes on
        return {"action": name, "error": str(exc)}


def _raise_risk(*, rule, order, actor) -> dict:
    order.refresh_from_db(fields=["risk_score", "risk_facts"])
    before = order.risk_score
    order.risk_score = max(before or 0, rule.risk_score)
    order.risk_facts = [*order.risk_facts, {"source": f"rule:{rule.name}", "fact": rule.description or rule.name}]
    stamp(order, actor=actor, reason=f"Rule {rule.name}")
    order.save(update_fields=["risk_score", "risk_facts", "updated_at"])
    return {"risk_score": order.risk_score, "before": before}


def _tag(*, rule, order, actor) -> dict:
    added = order_tag(order=order, actor=actor, tag=rule.add_tag, reason=f"Rule {rule.name}")
    return {"tag": rule.add_tag, "added": added}


def _hold(*, rule, order, actor) -> dict:
    hold = order_hold(
        order=order, actor=actor, reason=rule.hold_reason, note=f"Rule {rule.name}: {rule.description}".strip(": ")
    )
    return {"hold": hold.pk, "reason": HoldReason(rule.hold_reason).value}


def _case(*, rule, order, actor) -> dict:
    case, created = case_open(
        kind=rule.case_kind,
        level=rule.case_level,
        source_key=f"rule:{rule.pk}:{order.pk}",
        title=f"{rule.name}: {order.number}"[:255],
        actor=actor,
        order=order,
        facts={"rule": rule.name, "description": rule.description},
    )
    return {"case": case.number, "created": created}


def _notify(*, rule, order, actor) -> dict:
    recipients = sorted(_split(rule.notify_emails))
    for recipient in recipients:
        notification_queue(
            kind="rule_alert",
            recipient=recipient,
            group_key=f"rule:{rule.pk}:{recipient}",
            data={"rule": rule.name, "description": rule.description, "orders": [order.number]},
            order_number=order.number,
            is_test=order.is_test,
            merge=("orders",),
        )
    return {"notified": recipients}


def rule_clean(rule: AutomationRule) -> None:
    """Field errors for a rule before it is saved (the cockpit form and the API call this)."""
    errors: dict[str, list[str]] = {}
    if not rule.has_action:
        errors["add_tag"] = ["Set at least one action: tag, hold, case, notify or risk score."]
    if rule.min_total is not None and rule.max_total is not None and rule.min_total > rule.max_total:
        errors["max_total"] = ["Must be at least the minimum total."]
    for field in ("min_total", "max_total"):
        value = getattr(rule, field)
        if value is not None and value < Decimal("0"):
            errors[field] = ["Must be zero or more."]
    for country in _split(rule.countries, upper=True):
        if len(country) != 2 or not country.isalpha():
            errors["countries"] = [f"{country!r} is not a two-letter country code."]
    for email in _split(rule.notify_emails):
        if "@" not in email:
            errors["notify_emails"] = [f"{email!r} is not an email address."]
    if errors:
        raise ValidationError("The rule is not valid.", code="invalid_rule", fields=errors)

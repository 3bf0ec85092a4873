"""Who reads an order's fraud details, and which details those are.

The people who work fraud (orders.work_fraud_case: Support L2, Finance manager, administrators)
read them. Everyone else who may see the order sees that it is held for a fraud review, under
review or cleared, and by whom and when, but not why: not the risk score and its facts, the notes
of a fraud-review hold and of its release, the reasons written on the review's events (flagged,
accepted, cleared, a fraud case opened or closed, a cancel for fraud, a rule that raised the
score), nor the fraud case's title and resolution. A Support L1 agent who cannot open fraud cases
does not read their content on the order page either.

The cockpit's order screens, the event and hold lists, the order's history and the order API all
ask here, so the rule is written once.
"""

from orders.choices import CancelReason, CaseKind, HoldReason, OrderEventType

FRAUD_DETAILS_PERMISSION = "orders.work_fraud_case"

# The order fields that are fraud details (the order page, its history, the API).
RISK_FIELDS = ("risk_score", "risk_facts")

_FRAUD_EVENT_TYPES = {
    OrderEventType.FLAGGED_FOR_REVIEW,
    OrderEventType.REVIEW_ACCEPTED,
    OrderEventType.FRAUD_CLEARED,
}
_HOLD_EVENT_TYPES = {OrderEventType.HOLD_PLACED, OrderEventType.HOLD_RELEASED}
_CASE_EVENT_TYPES = {
    OrderEventType.CASE_OPENED,
    OrderEventType.CASE_ASSIGNED,
    OrderEventType.CASE_ESCALATED,
    OrderEventType.CASE_RESOLVED,
}
# What a fraud event's payload may still say to others: the states it moved between and the rows
# it names, never a score, a decision or a text.
_PLAIN_PAYLOAD_KEYS = {"from", "to", "hold", "reason", "case", "kind", "level", "status", "holds_released"}


def can_see_fraud_details(user) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(FRAUD_DETAILS_PERMISSION))


def hold_is_fraud(reason: str) -> bool:
    return reason == HoldReason.FRAUD_REVIEW


def case_is_fraud(kind: str) -> bool:
    return kind == CaseKind.FRAUD_REVIEW


def event_is_fraud(event_type: str, payload: dict | None) -> bool:
    """Whether an order event's reason and payload are fraud details."""
    payload = payload if isinstance(payload, dict) else {}
    if event_type in _FRAUD_EVENT_TYPES or "risk_score" in payload:
        return True
    if event_type in _HOLD_EVENT_TYPES:
        return hold_is_fraud(payload.get("reason"))
    if event_type in _CASE_EVENT_TYPES:
        return case_is_fraud(payload.get("kind"))
    if event_type == OrderEventType.CANCELED:
        return payload.get("reason_code") == CancelReason.FRAUD
    if event_type == OrderEventType.RULE_FIRED:
        return actions_touch_risk(payload.get("actions")) or any(
            "risk" in str(condition) for condition in payload.get("matched") or []
        )
    return False


def actions_touch_risk(actions) -> bool:
    """Whether a rule firing's actions raised a risk score or held for a fraud review."""
    items = actions if isinstance(actions, list) else [actions]
    return any(
        isinstance(item, dict) and (item.get("action") == "risk_score" or hold_is_fraud(item.get("reason")))
        for item in items
    )


def plain_payload(payload: dict | None) -> dict:
    """A fraud event's payload as others may read it."""
    payload = payload if isinstance(payload, dict) else {}
    return {key: value for key, value in payload.items() if key in _PLAIN_PAYLOAD_KEYS}


def order_data_for(user, data: dict) -> dict:
    """An order as the API serialized it, with the fraud details left out unless `user` works fraud."""
    if can_see_fraud_details(user):
        return data
    data = {**data, **{field: None if field == "risk_score" else [] for field in RISK_FIELDS if field in data}}
    if "holds" in data:
        data["holds"] = [
            {**hold, "note": "", "release_note": ""} if hold_is_fraud(hold.get("reason")) else hold
            for hold in data["holds"]
        ]
    if "events" in data:
        data["events"] = [
            {**event, "reason": "", "payload": plain_payload(event.get("payload"))}
            if event_is_fraud(event.get("type"), event.get("payload"))
            else event
            for event in data["events"]
        ]
    return data

"""The channels' stock rules and settings, and the Sourcing panel of the order page."""

import datetime
from decimal import Decimal

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from inventory.admin.base import TitledListMixin
from inventory.models import AllocationConflict, ChannelStockRule, ChannelStockSettings, SourcingStrategy
from inventory.selectors import sourcing_decision_latest
from oms.core.admin import AuditedAdmin, order_panel


@admin.register(ChannelStockRule)
class ChannelStockRuleAdmin(TitledListMixin, AuditedAdmin):
    list_title = _("Channel stock rules")
    list_display = ("channel", "kind", "product", "location", "location_kind", "share", "quantity", "is_active")
    list_filter = ("channel", "kind", "is_active")
    list_select_related = ("channel", "product", "location")
    autocomplete_fields = ("product",)
    fields = ("channel", "kind", "product", "location", "location_kind", "share", "quantity", "is_active")


@admin.register(ChannelStockSettings)
class ChannelStockSettingsAdmin(TitledListMixin, AuditedAdmin):
    list_title = _("Channel stock settings")
    list_display = ("channel", "priority", "reservation_mode", "sourcing_strategy")
    list_select_related = ("channel",)
    ordering = ("priority", "channel__name")


def _parcel_label(parcel: int | None, lines: list[str]) -> str:
    if parcel is None:
        return ""
    return ngettext("parcel %(n)s: line %(lines)s", "parcel %(n)s: lines %(lines)s", len(lines)) % {
        "n": parcel,
        "lines": ", ".join(lines),
    }


def _decimal(value) -> Decimal:
    try:
        return Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        return Decimal(0)


def _date(value: str | None):
    try:
        return datetime.date.fromisoformat(value) if value else None
    except ValueError:
        return None


@order_panel("sourcing", template="admin/inventory/sourcing_panel.html", position=20)
def order_sourcing_panel(*, order, user) -> dict | None:
    """What the order page shows under "Sourcing": the latest decision, explained, and conflicts.

    None when the user may not see sourcing. Support reads this to answer "why does this ship from
    Lyon?": every candidate location with its lead time, cost, units and why it was not chosen.
    """
    if not user.has_perm("inventory.view_sourcingdecision"):
        return None
    decision = sourcing_decision_latest(order_id=order.pk)
    conflicts = [
        {
            "won": conflict.winner_order_id == order.pk,
            "other": conflict.loser_order if conflict.winner_order_id == order.pk else conflict.winner_order,
            "quantity": conflict.quantity,
            "sku": conflict.stock_item.product.sku,
            "location": conflict.stock_item.location.name,
            "reason": conflict.reason,
            "created_at": conflict.created_at,
        }
        for conflict in AllocationConflict.objects.filter(Q(winner_order_id=order.pk) | Q(loser_order_id=order.pk))
        .select_related("stock_item__product", "stock_item__location", "winner_order", "loser_order")
        .order_by("-created_at", "-pk")[:50]
    ]
    if decision is None:
        return {"decision": None, "conflicts": conflicts}
    names = {c.get("location"): c.get("name") or c.get("location") for c in decision.candidates}
    skus = []
    for entry in [*decision.allocations, *decision.backorders]:
        if entry.get("sku") and entry["sku"] not in skus:
            skus.append(entry["sku"])
    for candidate in decision.candidates:
        for sku in candidate.get("available") or {}:
            if sku not in skus:
                skus.append(sku)
    # Parcels in the order the plan chose them (the summary's order), then the others by speed.
    parcel_of = {}
    for allocation in decision.allocations:
        parcel_of.setdefault(allocation.get("location"), len(parcel_of) + 1)
    lines_of = {}
    for allocation in decision.allocations:
        lines_of.setdefault(allocation.get("location"), []).append(str(allocation.get("line")))
    candidates = sorted(
        decision.candidates,
        key=lambda c: (
            parcel_of.get(c.get("location"), len(parcel_of) + 1),
            c.get("lead_days", 0),
            _decimal(c.get("cost")),
            c.get("location", ""),
        ),
    )
    try:
        strategy = SourcingStrategy(decision.strategy).label
    except ValueError:
        strategy = decision.strategy
    return {
        "decision": decision,
        "strategy": strategy,
        "skus": skus,
        "parcels": len(parcel_of),
        "allocations": [
            {
                **a,
                "location_name": names.get(a.get("location"), a.get("location")),
                "parcel": parcel_of[a.get("location")],
            }
            for a in sorted(decision.allocations, key=lambda a: (parcel_of[a.get("location")], a.get("line", 0)))
        ],
        "backorders": [{**b, "promised_date": _date(b.get("promised_for"))} for b in decision.backorders],
        "candidates": [
            {
                "code": c.get("location"),
                "name": c.get("name") or c.get("location"),
                "lead_days": c.get("lead_days"),
                "cost": c.get("cost"),
                "units": [(c.get("available") or {}).get(sku) for sku in skus],
                "chosen": bool(c.get("chosen")),
                "parcel": parcel_of.get(c.get("location")),
                "ships": _parcel_label(parcel_of.get(c.get("location")), lines_of.get(c.get("location"), [])),
                "reason": c.get("rejected_because") or "",
            }
            for c in candidates
        ],
        "conflicts": conflicts,
    }

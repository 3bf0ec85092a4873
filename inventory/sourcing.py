"""Where an order ships from: a pure decision over a snapshot, explained.

Each candidate location gets a lead time for this customer (handling days, +1 after the cut-off,
transit days to the destination country) and a cost per parcel. Strategies:

- fewest_splits (default): one location that covers everything if there is one (fastest, then
  cheapest, then the location's priority); otherwise, repeatedly the location that covers the most
  of what is left;
- fastest: each line from the fastest location that has it, splits allowed;
- cheapest: like fewest_splits, but cost before lead time.

Every candidate that was not chosen carries the reason in words support can read out.
"""

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from inventory.models import SourcingStrategy

DEFAULT_DOMESTIC_TRANSIT_DAYS = 2
DEFAULT_INTERNATIONAL_TRANSIT_DAYS = 5


@dataclass
class LineNeed:
    line_id: int
    line_number: int
    sku: str
    product_id: int
    quantity: int


@dataclass
class Candidate:
    location_id: int
    code: str
    name: str
    priority: int
    lead_days: int
    cost: Decimal
    available: dict[int, int]  # product_id → units this channel may take here
    excluded_because: str = ""

    def covers(self, needs: dict[int, int]) -> int:
        return sum(min(self.available.get(product_id, 0), qty) for product_id, qty in needs.items() if qty > 0)

    def covers_all(self, needs: dict[int, int]) -> bool:
        return all(self.available.get(product_id, 0) >= qty for product_id, qty in needs.items() if qty > 0)


@dataclass
class Plan:
    strategy: str
    allocations: list[tuple[LineNeed, Candidate, int]] = field(default_factory=list)
    backorders: list[tuple[LineNeed, int]] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # location code → why not chosen

    @property
    def chosen(self) -> list[Candidate]:
        seen = {}
        for _, candidate, _ in self.allocations:
            seen.setdefault(candidate.code, candidate)
        return list(seen.values())

    def summary(self) -> str:
        chosen = self.chosen
        if not chosen:
            return "No location can ship this order now."
        names = ", ".join(f"{c.name} ({c.lead_days} d, {c.cost})" for c in chosen)
        parcels = len(chosen)
        text = f"Ships from {names}: {parcels} parcel{'s' if parcels > 1 else ''}"
        if self.backorders:
            text += f"; {sum(q for _, q in self.backorders)} unit(s) backordered"
        return text + "."


def lead_days(
    *, handling_days: int, cutoff: datetime.time | None, now_local: datetime.datetime, transit_days: int
) -> int:
    late = cutoff is not None and now_local.time() >= cutoff
    return handling_days + transit_days + (1 if late else 0)


def _key(strategy: str):
    if strategy == SourcingStrategy.CHEAPEST:
        return lambda c: (c.cost, c.lead_days, c.priority, c.code)
    return lambda c: (c.lead_days, c.cost, c.priority, c.code)


def _shortfall(candidate: Candidate, lines: list[LineNeed]) -> str:
    missing = []
    for line in lines:
        have = candidate.available.get(line.product_id, 0)
        if have < line.quantity:
            missing.append(f"{have} of {line.quantity} × {line.sku}" if have else f"no {line.sku}")
    return "has " + ", ".join(missing)


def plan(*, lines: list[LineNeed], candidates: list[Candidate], strategy: str) -> Plan:
    result = Plan(strategy=strategy)
    usable = []
    for candidate in candidates:
        if candidate.excluded_because:
            result.rejected[candidate.code] = candidate.excluded_because
        else:
            usable.append(candidate)
    key = _key(strategy)
    needs = {}
    for line in lines:
        needs[line.product_id] = needs.get(line.product_id, 0) + line.quantity

    if strategy == SourcingStrategy.FASTEST:
        _plan_per_line(result, lines, sorted(usable, key=key))
    else:
        whole = sorted((c for c in usable if c.covers_all(needs)), key=key)
        if whole:
            best = whole[0]
            for line in lines:
                result.allocations.append((line, best, line.quantity))
            for other in usable:
                if other is best:
                    continue
                if other in whole:
                    result.rejected[other.code] = _slower_or_costlier(other, best, strategy)
                else:
                    result.rejected[other.code] = (
                        f"{_shortfall(other, lines)}; {best.name} ships everything in one parcel"
                    )
        else:
            _plan_greedy(result, lines, usable, key)

    chosen_codes = {c.code for c in result.chosen}
    for candidate in usable:
        if candidate.code not in chosen_codes and candidate.code not in result.rejected:
            if candidate.covers(needs) == 0:
                result.rejected[candidate.code] = _shortfall(candidate, lines)
            else:
                parcels = len(chosen_codes)
                result.rejected[candidate.code] = (
                    f"{_shortfall(candidate, lines)}; the chosen locations ship the order in {parcels} "
                    f"parcel{'s' if parcels > 1 else ''} without it"
                    if not candidate.covers_all(needs)
                    else "not needed: the chosen locations cover the order with fewer parcels"
                )
    return result


def _slower_or_costlier(other: Candidate, best: Candidate, strategy: str) -> str:
    if strategy == SourcingStrategy.CHEAPEST and other.cost != best.cost:
        return f"costlier: {other.cost} per parcel against {best.cost} at {best.name}"
    if other.lead_days != best.lead_days:
        return f"slower: {other.lead_days} days against {best.lead_days} at {best.name}"
    if other.cost != best.cost:
        return f"costlier: {other.cost} per parcel against {best.cost} at {best.name}"
    return f"lower priority than {best.name} at the same lead time and cost"


def _plan_greedy(result: Plan, lines: list[LineNeed], usable: list[Candidate], key) -> None:
    remaining = {line.line_id: line.quantity for line in lines}
    budget = {c.code: dict(c.available) for c in usable}
    while any(remaining.values()):
        best, best_units = None, 0
        for candidate in sorted(usable, key=key):
            units = sum(min(budget[candidate.code].get(line.product_id, 0), remaining[line.line_id]) for line in lines)
            if units > best_units:
                best, best_units = candidate, units
        if best is None:
            break
        for line in lines:
            take = min(budget[best.code].get(line.product_id, 0), remaining[line.line_id])
            if take > 0:
                result.allocations.append((line, best, take))
                remaining[line.line_id] -= take
                budget[best.code][line.product_id] -= take
    # Second pass: the parcels are decided; each line now ships from the best of them that has it
    # (the greedy pass may have given a line to a slower location it picked for other lines).
    chosen = sorted({id(c): c for _, c, _ in result.allocations}.values(), key=key)
    result.allocations = []
    _plan_per_line(result, lines, chosen, record_backorders=False)
    for line in lines:
        if remaining[line.line_id] > 0:
            result.backorders.append((line, remaining[line.line_id]))


def _plan_per_line(
    result: Plan, lines: list[LineNeed], ordered: list[Candidate], *, record_backorders: bool = True
) -> None:
    budget = {c.code: dict(c.available) for c in ordered}
    for line in lines:
        left = line.quantity
        for candidate in ordered:
            take = min(budget[candidate.code].get(line.product_id, 0), left)
            if take > 0:
                result.allocations.append((line, candidate, take))
                budget[candidate.code][line.product_id] -= take
                left -= take
            if left == 0:
                break
        if left and record_backorders:
            result.backorders.append((line, left))

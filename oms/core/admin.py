"""Admin building blocks shared by every app's screens (the cockpit).

The wall of the Django admin at millions of rows is the unfiltered `SELECT COUNT(*)` the paginator
runs on every list page (Django ticket #8408). `EstimatedCountPaginator` never issues it:

- unfiltered list on PostgreSQL: the planner's row estimate (`pg_class.reltuples`) when the table
  is big, else a count bounded by a LIMIT (it reads at most `estimate_threshold + 1` rows);
- filtered list on PostgreSQL: an exact count under a `statement_timeout` (200 ms); when it times
  out, the planner's estimate for that query (`EXPLAIN`), shown as "about N";
- other databases (SQLite, the embedded demo): an exact count.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from babel.numbers import format_currency
from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import OperationalError, connections, transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import get_language, to_locale
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

logger = logging.getLogger(__name__)


class _Counted(Exception):  # noqa: N818 (not an error: carries the result out of the rolled-back block)
    def __init__(self, count: int):
        super().__init__(count)
        self.count = count


def _is_unfiltered(queryset) -> bool:
    query = queryset.query
    return not query.where and not query.distinct and not query.combinator and not query.is_sliced


def table_estimate(queryset) -> int | None:
    """PostgreSQL's estimate of the rows in the queryset's table; None when never analyzed."""
    connection = connections[queryset.db]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(queryset.model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


def query_estimate(queryset) -> int:
    """The planner's row estimate for this query (EXPLAIN, nothing is executed)."""
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def timeboxed_count(queryset, *, timeout_ms: int) -> int | None:
    """An exact count, or None when it takes longer than `timeout_ms`.

    The count runs in its own transaction (a savepoint inside an outer one) that is always rolled
    back, so the `SET LOCAL statement_timeout` never outlives it.
    """
    connection = connections[queryset.db]
    try:
        with transaction.atomic(using=queryset.db):
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
            raise _Counted(queryset.count())
    except _Counted as done:
        return done.count
    except OperationalError:
        logger.info("admin count timed out", extra={"table": queryset.model._meta.db_table})
        return None


class EstimatedCountPaginator(Paginator):
    """A paginator whose `count` is cheap on tables of any size; `is_estimate` says when it guessed."""

    estimate_threshold = 10_000
    count_timeout_ms = 200

    is_estimate = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not hasattr(queryset, "query") or connections[queryset.db].vendor != "postgresql":
            return super().count
        if _is_unfiltered(queryset):
            return self._unfiltered_count(queryset)
        exact = timeboxed_count(queryset, timeout_ms=self.count_timeout_ms)
        if exact is not None:
            return exact
        self.is_estimate = True
        return max(query_estimate(queryset), self.per_page + 1)

    def _unfiltered_count(self, queryset) -> int:
        estimate = table_estimate(queryset)
        if estimate is not None and estimate > self.estimate_threshold:
            self.is_estimate = True
            return estimate
        # Small (or never analyzed) table: an exact count that reads at most threshold + 1 rows.
        bounded = queryset.order_by()[: self.estimate_threshold + 1].count()
        if bounded <= self.estimate_threshold:
            return bounded
        self.is_estimate = True
        return max(bounded, estimate or 0)


class AuditedAdmin(SimpleHistoryAdmin):
    """simple-history's admin (the History button: field diffs with the user), without "revert".

    Reverting saves a whole historical row back over the live one: it would bypass the services
    (and their permission checks, events and outbox). History is for reading here.
    """

    def revert_disabled(self, request, obj=None):
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method != "GET":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


def _field_errors(fields: dict, prefix: str = ""):
    for key, value in fields.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _field_errors(value, prefix=f"{full}.")
        else:
            for message in value if isinstance(value, list) else [value]:
                yield full, str(message)


def apply_service_error(form, exc) -> None:
    """Put a service error's field errors on the form's fields (`form.field_for_error(dotted key)`
    names the field, or None); when none fits, the message goes on the form as a whole."""
    placed = False
    for key, message in _field_errors(exc.extra.get("fields") or {}):
        target = form.field_for_error(key)
        if target is not None and target not in form.errors:
            form.add_error(target, message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


class QueueStateFilter(admin.SimpleListFilter):
    """Open rows by default: the list is an exception queue. A subclass names the timestamp that is
    empty while a row is open (`closed_field`) and the words for both states."""

    title = _("state")
    parameter_name = "state"
    closed_field = ""
    open_choice = ("open", _("Open"))
    closed_choice = ("resolved", _("Resolved"))

    def lookups(self, request, model_admin):
        return [self.open_choice, self.closed_choice, ("all", _("All"))]

    def value(self):
        return super().value() or self.open_choice[0]

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == self.open_choice[0]:
            return queryset.filter(**{f"{self.closed_field}__isnull": True})
        if self.value() == self.closed_choice[0]:
            return queryset.filter(**{f"{self.closed_field}__isnull": False})
        return queryset


def badge(label, tone: str = "muted", *, title: str = ""):
    """A coloured status pill of the cockpit (tones are CSS classes of static/oms/cockpit.css)."""
    return format_html('<span class="oms-badge oms-badge--{}" title="{}">{}</span>', tone, title, label)


def money(amount, currency: str) -> str:
    if amount is None:
        return ""
    return format_currency(amount, currency, locale=to_locale(get_language() or "en"))


def short_datetime(value) -> str:
    """2026-11-25 23:20 in the cockpit's time zone: short, sortable, unambiguous in every language."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


class ReadOnlyAdminMixin:
    """Rows written only by services: shown, never added, edited or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def form_page(request, model_admin, *, template, form, title, submit, back_url, intro="", extra=None, tone="primary"):
    """A cockpit page around one action form (the app's template adds what the action shows)."""
    opts = model_admin.opts
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "app_label": opts.app_label,
        "title": title,
        "subtitle": None,
        "form": form,
        "submit_label": submit,
        "submit_tone": tone,
        "intro": intro,
        "back_url": back_url,
        "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        "media": model_admin.media + form.media,
        **(extra or {}),
    }
    return TemplateResponse(request, template, context)


# --- the order page: what other apps contribute ----------------------------------------------------
# orders draws the order page but may not import the apps above it (fulfillment, billing …): each app
# registers its panels and buttons here when its admin module loads, and the page shows whatever is
# registered, like the hooks (oms.core.hooks).


@dataclass(frozen=True)
class OrderPanel:
    """A panel of the order page. `build(*, order, user)` returns the template's data, or None to
    leave the panel out for this user; the template reads the data under `key`."""

    key: str
    template: str
    build: Callable
    position: int


ORDER_PAGE_PANELS: dict[str, OrderPanel] = {}


def order_panel(key: str, *, template: str, position: int):
    """Register `build(*, order, user)` as the order page's panel `key` (a decorator). Panels show in
    `position` order; registering a key again replaces it (an admin module may be imported twice)."""

    def register(build):
        ORDER_PAGE_PANELS[key] = OrderPanel(key=key, template=template, build=build, position=position)
        return build

    return register


def order_page_panels(*, order, user) -> list[tuple[OrderPanel, dict]]:
    """The panels `user` sees on `order`'s page, in position order, each with its data."""
    shown = []
    for panel in sorted(ORDER_PAGE_PANELS.values(), key=lambda panel: (panel.position, panel.key)):
        data = panel.build(order=order, user=user)
        if data:
            shown.append((panel, data))
    return shown


@dataclass(frozen=True)
class OrderPageAction:
    """A button of the order page contributed by an app above orders. It is offered when
    `allowed(order, user)`; its form (`form_class(data, order=, user=)`) collects the input and the
    POST calls `run(order, user, form)`, one service, which decides again. `done` is the success
    message (with `%(number)s`)."""

    name: str
    label: str
    form_class: type
    run: Callable
    done: str
    allowed: Callable
    tone: str = "default"
    intro: str = ""


ORDER_PAGE_ACTIONS: dict[str, OrderPageAction] = {}


def order_action(action: OrderPageAction) -> OrderPageAction:
    """Register a contributed order-page button; they follow the order's own, in registration order."""
    ORDER_PAGE_ACTIONS[action.name] = action
    return action


# The forms of order-page actions, the order's own and those other apps contribute. A service's field
# errors land on the field of the same name (`field_for_error`).

ACTION_TEXT_MAX = 5_000  # the services' longest free text (orders.services.MAX_TEXT)


def reason_field(*, required: bool, label=None, help_text=""):
    return forms.CharField(
        label=label or _("Reason"),
        required=required,
        max_length=ACTION_TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=help_text,
    )


class ActionForm(forms.Form):
    """A form for one order action. Service field errors land on the field of the same name."""

    def __init__(self, *args, order, user, **kwargs):
        self.order = order
        self.user = user
        super().__init__(*args, **kwargs)

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


class LineQuantitiesForm(ActionForm):
    """One quantity field per order line that still has something to record (`available(line)`)."""

    quantity_label = _("open")

    def available(self, line) -> int:
        raise NotImplementedError

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.line_fields = []
        for line in self.order.lines.order_by("line_number"):
            available = self.available(line)
            if available <= 0:
                continue
            name = f"line_{line.pk}"
            self.fields[name] = forms.IntegerField(
                label=f"{line.line_number}. {line.sku} — {line.name}",
                min_value=0,
                max_value=available,
                initial=available,
                help_text=f"{self.quantity_label}: {available}",
            )
            self.line_fields.append(name)
        self.fields["reference"] = forms.CharField(label=_("Reference"), required=False, max_length=128)
        self.fields["reason"] = reason_field(required=False)

    def quantities(self) -> dict[int, int]:
        return {
            int(name.removeprefix("line_")): self.cleaned_data[name]
            for name in self.line_fields
            if self.cleaned_data.get(name)
        }

    def field_for_error(self, key: str) -> str | None:
        if key.startswith("quantities."):
            name = f"line_{key.removeprefix('quantities.')}"
            return name if name in self.fields else None
        return super().field_for_error(key)


class IdChoiceFilter(admin.SimpleListFilter):
    """A list filter on a related row's id, for rows that reach it through another table (a parcel's
    location, a wave's location). Subclasses give `title`, `parameter_name`, `lookup` (the filter
    path) and `options()` ((id, label) pairs, from their app's selectors)."""

    lookup = ""

    def options(self) -> list[tuple[int, str]]:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return [(str(pk), label) for pk, label in self.options()]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(**{self.lookup: int(value)})

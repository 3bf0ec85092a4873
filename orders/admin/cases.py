"""The case queues: one list per kind and level, scoped to the teams that work them; the case page with
take, escalate and resolve; the order page's Cases panel.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.db.models import F, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from oms.core.admin import (
    AuditedAdmin,
    EstimatedCountPaginator,
    QueueStateFilter,
    ReadOnlyAdminMixin,
    apply_service_error,
    badge,
    order_panel,
    short_datetime,
)
from oms.core.errors import ApplicationError
from orders import cases
from orders.choices import CASE_TEAMS, CaseDecision, CaseKind, CaseLevel, CaseStatus, CaseTeam, HoldReason, OrderStatus
from orders.fraud_details import can_see_fraud_details, case_is_fraud
from orders.models import Case, Order
from orders.selectors import order_search_q

TEAM_TONES = {
    CaseTeam.SUPPORT: "info",
    CaseTeam.FRAUD: "alert",
    CaseTeam.WAREHOUSE: "teal",
    CaseTeam.FINANCE: "purple",
    CaseTeam.INTEGRATION: "warn",
}


STATUS_TONES = {
    CaseStatus.OPEN: "warn",
    CaseStatus.IN_PROGRESS: "info",
    CaseStatus.ESCALATED: "alert",
    CaseStatus.RESOLVED: "done",
}


# The decisions a person picks when closing a case (the last one is the detectors' own).
PERSON_DECISIONS = [(value, label) for value, label in CaseDecision.choices if value != CaseDecision.RESOLVED_UPSTREAM]


def _kind_label(kind: str) -> str:
    try:
        return str(CaseKind(kind).label)
    except ValueError:
        return kind


def kind_badge(case: Case):
    try:
        tone = TEAM_TONES.get(CASE_TEAMS[CaseKind(case.kind)], "muted")
    except ValueError:
        tone = "muted"
    return badge(_kind_label(case.kind), tone)


def status_badge(case: Case):
    return badge(case.get_status_display(), STATUS_TONES.get(case.status, "muted"))


def due_label(case: Case):
    text = short_datetime(case.due_at)
    if case.is_overdue:
        return format_html(
            '<span class="oms-delta oms-delta--down oms-overdue" title="{}">{}</span>', _("overdue"), text
        )
    return text


def readable_pairs(data) -> list[tuple[str, str]]:
    """A case's facts or evidence as (label, text) pairs people read, not JSON."""
    if not isinstance(data, dict):
        return [("", str(data))] if data not in (None, "", [], {}) else []
    pairs = []
    for key, value in data.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list):
            text = "; ".join(
                (f"{item.get('fact', '')} ({item['source']})" if item.get("source") else str(item.get("fact", "")))
                if isinstance(item, dict) and "fact" in item
                else (", ".join(f"{k}: {v}" for k, v in item.items()) if isinstance(item, dict) else str(item))
                for item in value
            )
        elif isinstance(value, dict):
            text = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in value.items())
        elif isinstance(value, bool):
            text = str(_("yes") if value else _("no"))
        else:
            text = str(value)
        pairs.append((str(key).replace("_", " ").capitalize(), text))
    return pairs


def may_clear_fraud(order, user) -> bool:
    """The order page's and the fraud case's "Clear fraud review" button."""
    return user.has_perm("orders.release_fraud_hold") and (
        order.status == OrderStatus.UNDER_REVIEW
        or any(h.reason == HoldReason.FRAUD_REVIEW and h.released_at is None for h in order.holds.all())
    )


def may_take(user, case: Case) -> bool:
    return (
        case.is_open
        and cases.can_work(user, case)
        and not (case.assignee_id == user.pk and case.status == CaseStatus.IN_PROGRESS)
    )


def may_escalate(user, case: Case) -> bool:
    return (
        case.is_open
        and case.level == CaseLevel.L1
        and user.has_perm("orders.escalate_case")
        and cases.can_work(user, case)
    )


def may_resolve(user, case: Case) -> bool:
    # A case whose source is still open (an active hold, an open short pick) closes where it is fixed.
    return (
        case.is_open
        and user.has_perm("orders.resolve_case")
        and cases.can_work(user, case)
        and not cases.case_source_open(case)
    )


class _ServiceForm(forms.Form):
    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


class EscalateForm(_ServiceForm):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        help_text=_("What level 2 needs to know: why level 1 cannot close it."),
    )


class ResolveForm(_ServiceForm):
    decision = forms.ChoiceField(label=_("Decision"), choices=PERSON_DECISIONS)
    resolution = forms.CharField(
        label=_("Resolution"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        help_text=_("What was done and what it rests on (kept as evidence)."),
    )


class CaseStateFilter(QueueStateFilter):
    """Open cases (not resolved) by default: the list is the queue."""

    title = _("status")
    parameter_name = "state"
    closed_field = "resolved_at"

    def lookups(self, request, model_admin):
        return [
            ("open", _("Open (all)")),
            (CaseStatus.OPEN.value, _("New")),
            (CaseStatus.IN_PROGRESS.value, CaseStatus.IN_PROGRESS.label),
            (CaseStatus.ESCALATED.value, CaseStatus.ESCALATED.label),
            ("resolved", CaseStatus.RESOLVED.label),
            ("all", _("All")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "open":
            # `NOT status = 'resolved'` is the predicate of the partial queue indexes.
            return queryset.exclude(status=CaseStatus.RESOLVED)
        if value in CaseStatus.values:
            return queryset.filter(status=value)
        return queryset


class CaseKindFilter(admin.SimpleListFilter):
    """Only the kinds the user works."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds, _levels = cases.user_case_scope(request.user)
        return [(kind, _kind_label(kind)) for kind in kinds]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


class CaseLevelFilter(admin.SimpleListFilter):
    title = _("level")
    parameter_name = "level"

    def lookups(self, request, model_admin):
        _kinds, levels = cases.user_case_scope(request.user)
        return [(level, CaseLevel(level).label) for level in levels]

    def queryset(self, request, queryset):
        return queryset.filter(level=self.value()) if self.value() else queryset


class AssigneeFilter(admin.SimpleListFilter):
    title = _("assignee")
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        return [("mine", _("Mine")), ("nobody", _("Unassigned"))]

    def queryset(self, request, queryset):
        if self.value() == "mine":
            return queryset.filter(assignee=request.user)
        if self.value() == "nobody":
            return queryset.filter(assignee__isnull=True)
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    title = _("due")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue")), ("no", _("On time"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(due_at__lt=now).exclude(status=CaseStatus.RESOLVED)
        if self.value() == "no":
            return queryset.filter(due_at__gte=now)
        return queryset


def _case_url(case_or_pk, name: str = "orders_case_change") -> str:
    pk = case_or_pk.pk if isinstance(case_or_pk, Case) else case_or_pk
    return reverse(f"admin:{name}", args=[pk])


@admin.register(Case)
class CaseAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    list_display = (
        "number",
        "kind_column",
        "level_column",
        "status_column",
        "title_column",
        "order_link",
        "assignee",
        "due_column",
    )
    list_display_links = ("number",)
    list_filter = (CaseStateFilter, CaseKindFilter, CaseLevelFilter, AssigneeFilter, OverdueFilter)
    list_select_related = ("order", "assignee")
    list_per_page = 50
    ordering = ("due_at", "pk")
    sortable_by = ()
    search_fields = ("number",)
    search_help_text = _("Case number, or the order's number, external id or customer e-mail.")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = ("assign_to_me", "escalate_selected", "resolve_selected")

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Case queue"), **(extra_context or {})})

    def get_queryset(self, request):
        return super().get_queryset(request).filter(cases.case_scope_q(request.user))

    def has_view_permission(self, request, obj=None):
        if not super().has_view_permission(request, obj):
            return False
        kinds, _levels = cases.user_case_scope(request.user)
        if obj is not None:
            return cases.can_work(request.user, obj)
        return bool(kinds)

    # Read-only (ReadOnlyAdminMixin): cases open where the problem is detected, or from the order page.

    def has_work_permission(self, request):
        return bool(cases.user_case_scope(request.user)[0])

    def has_escalate_permission(self, request):
        return request.user.has_perm("orders.escalate_case")

    def has_resolve_permission(self, request):
        return request.user.has_perm("orders.resolve_case")

    def get_ordering(self, request):
        if request.GET.get(CaseStateFilter.parameter_name) == "resolved":
            return ("-resolved_at", "-pk")  # the partial index of resolved cases
        return self.ordering

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(
            Q(number=term.upper()) | Q(order__in=Order.objects.filter(order_search_q(term)).values("pk"))
        ), False

    @admin.display(description=_("kind"))
    def kind_column(self, case):
        return kind_badge(case)

    @admin.display(description=_("level"))
    def level_column(self, case):
        return case.get_level_display()

    @admin.display(description=_("status"))
    def status_column(self, case):
        return status_badge(case)

    @admin.display(description=_("title"))
    def title_column(self, case):
        title = Truncator(case.title).chars(80)
        score = (case.facts or {}).get("risk_score")
        if score is None:
            return title
        # The fraud queue reads the risk score first (the facts are on the case page).
        return format_html(
            "{} {}", badge(_("risk %(score)s") % {"score": score}, "alert" if score >= 70 else "warn"), title
        )

    @admin.display(description=_("order"))
    def order_link(self, case):
        if case.order_id is None:
            return ""
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[case.order_id]), case.order.number
        )

    @admin.display(description=_("due"))
    def due_column(self, case):
        return due_label(case)

    bulk_limit = 200  # "select all" on a queue of thousands is a mistake, not a bulk action

    def _run_each(self, request, queryset, run, done) -> None:
        succeeded, failed = [], []
        selected = list(queryset.order_by("pk")[: self.bulk_limit + 1])
        if len(selected) > self.bulk_limit:
            messages.error(request, _("Select at most %(n)s cases at once.") % {"n": self.bulk_limit})
            return
        for case in selected:
            try:
                run(case)
            except ApplicationError as exc:
                failed.append(f"{case.number}: {exc.message}")
            except (TransitionNotAllowed, ConcurrentTransition) as exc:
                failed.append(f"{case.number}: {exc}")
            else:
                succeeded.append(case.number)
        if succeeded:
            messages.success(request, done % {"cases": ", ".join(succeeded)})
        for failure in failed:
            messages.error(request, failure)

    @admin.action(description=_("Assign to me"), permissions=["work"])
    def assign_to_me(self, request, queryset):
        self._run_each(
            request,
            queryset,
            lambda case: cases.case_assign(case=case, actor=request.user),
            _("Assigned to you: %(cases)s."),
        )

    def _bulk_form(self, request, queryset, *, action: str, form_class, title, run, done, submit_tone="default"):
        """The intermediate page of a bulk action: a form for what every selected case needs."""
        if request.POST.get("apply"):
            form = form_class(request.POST)
            if form.is_valid():
                self._run_each(request, queryset, lambda case: run(case, form), done)
                return None  # back to the queue
        else:
            form = form_class()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "form": form,
            "cases": list(queryset.order_by("due_at", "pk")[: self.bulk_limit + 1]),
            "action": action,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "submit_label": title,
            "submit_tone": submit_tone,
            "changelist_url": reverse("admin:orders_case_changelist"),
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/orders/case/bulk_action.html", context)

    @admin.action(description=_("Escalate to level 2…"), permissions=["escalate"])
    def escalate_selected(self, request, queryset):
        return self._bulk_form(
            request,
            queryset,
            action="escalate_selected",
            form_class=EscalateForm,
            title=_("Escalate to level 2"),
            run=lambda case, form: cases.case_escalate(
                case=case, actor=request.user, reason=form.cleaned_data["reason"]
            ),
            done=_("Escalated to level 2: %(cases)s."),
            submit_tone="danger",
        )

    @admin.action(description=_("Resolve…"), permissions=["resolve"])
    def resolve_selected(self, request, queryset):
        return self._bulk_form(
            request,
            queryset,
            action="resolve_selected",
            form_class=ResolveForm,
            title=_("Resolve"),
            run=lambda case, form: cases.case_resolve(
                case=case,
                actor=request.user,
                decision=form.cleaned_data["decision"],
                resolution=form.cleaned_data["resolution"],
            ),
            done=_("Resolved: %(cases)s."),
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/do/<slug:verb>/",
                self.admin_site.admin_view(self.work_view),
                name="orders_case_work",
            ),
            *super().get_urls(),
        ]

    def _page_case(self, request, object_id) -> Case | None:
        try:
            pk = int(unquote(object_id))
        except (TypeError, ValueError):
            return None
        return (
            self.get_queryset(request)
            .select_related("order", "customer", "assignee", "opened_by", "resolved_by")
            .filter(pk=pk)
            .first()
        )

    def _context(self, request, case, title):
        user = request.user
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "subtitle": None,
            "case": case,
            "original": case,
            "kind_badge": kind_badge(case),
            "status_badge": status_badge(case),
            "due": due_label(case),
            "changelist_url": reverse("admin:orders_case_changelist", current_app=self.admin_site.name),
            "change_url": _case_url(case),
            "order_url": reverse("admin:orders_order_change", args=[case.order_id]) if case.order_id else "",
            "customer_url": reverse("admin:orders_customer_change", args=[case.customer_id])
            if case.customer_id
            else "",
            "buttons": {
                "take": may_take(user, case),
                "escalate": may_escalate(user, case),
                "resolve": may_resolve(user, case),
            },
            "work_urls": {
                verb: reverse("admin:orders_case_work", args=[case.pk, verb], current_app=self.admin_site.name)
                for verb in ("take", "escalate", "resolve")
            },
            # A fraud case is closed by clearing (or canceling) the order: the protocol's form is one
            # click from the case.
            "clear_fraud_url": reverse(
                "admin:orders_order_action", args=[case.order_id, "clear_fraud"], current_app=self.admin_site.name
            )
            if case.kind == CaseKind.FRAUD_REVIEW
            and case.is_open
            and case.order_id
            and may_clear_fraud(case.order, user)
            else "",
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        case = self._page_case(request, object_id)
        if case is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, case):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        request.current_app = self.admin_site.name
        timeline = [
            {
                "row": row,
                "status": CaseStatus(row.status).label if row.status in CaseStatus.values else row.status,
                "level": CaseLevel(row.level).label if row.level in CaseLevel.values else row.level,
            }
            for row in case.history.select_related("history_user", "assignee").order_by("-history_date", "-history_id")
        ]
        context = {
            **self._context(request, case, title=_("Case %(number)s") % {"number": case.number}),
            "facts": readable_pairs(case.facts),
            "evidence": readable_pairs(case.evidence),
            "timeline": timeline,
            "history_url": reverse("admin:orders_case_history", args=[case.pk], current_app=self.admin_site.name),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/orders/case/detail.html", context)

    def work_view(self, request, object_id, verb):
        forms_by_verb = {"escalate": EscalateForm, "resolve": ResolveForm, "take": None}
        if verb not in forms_by_verb:
            return HttpResponseRedirect(reverse("admin:orders_case_changelist"))
        case = self._page_case(request, object_id)
        if case is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        request.current_app = self.admin_site.name
        page_url = _case_url(case)
        form_class = forms_by_verb[verb]
        if verb == "take":
            if request.method == "POST":
                try:
                    cases.case_assign(case=case, actor=request.user)
                except (ApplicationError, TransitionNotAllowed, ConcurrentTransition) as exc:
                    messages.error(request, getattr(exc, "message", str(exc)))
                else:
                    messages.success(request, _("Case %(number)s is yours.") % {"number": case.number})
            return HttpResponseRedirect(page_url)
        if request.method != "POST" and not (may_escalate if verb == "escalate" else may_resolve)(request.user, case):
            messages.warning(request, _("This is not open to you on case %(number)s now.") % {"number": case.number})
            return HttpResponseRedirect(page_url)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if verb == "escalate":
                    case = cases.case_escalate(case=case, actor=request.user, reason=form.cleaned_data["reason"])
                else:
                    case = cases.case_resolve(
                        case=case,
                        actor=request.user,
                        decision=form.cleaned_data["decision"],
                        resolution=form.cleaned_data["resolution"],
                    )
            except ApplicationError as exc:
                apply_service_error(form, exc)
                messages.error(request, exc.message)
            except (TransitionNotAllowed, ConcurrentTransition) as exc:
                form.add_error(None, str(exc))
                messages.error(request, str(exc))
            else:
                if verb == "resolve":
                    messages.success(request, _("Case %(number)s resolved.") % {"number": case.number})
                    return HttpResponseRedirect(page_url)
                if cases.can_work(request.user, case):
                    messages.success(request, _("Case %(number)s escalated to level 2.") % {"number": case.number})
                    return HttpResponseRedirect(page_url)
                messages.success(
                    request,
                    _("Case %(number)s escalated to level 2: it left your queue.") % {"number": case.number},
                )
                return HttpResponseRedirect(reverse("admin:orders_case_changelist"))
        labels = {"escalate": _("Escalate to level 2"), "resolve": _("Resolve")}
        context = {
            **self._context(request, case, title=f"{labels[verb]} — {case.number}"),
            "form": form,
            "verb": verb,
            "submit_label": labels[verb],
            "submit_tone": "danger" if verb == "escalate" else "primary",
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/orders/case/work_form.html", context)


# The order page's panels (oms.core.admin.order_panel) come from the app that owns each: fulfillment's
# Shipments at 10, inventory's Sourcing at 20, orders' Cases at 30.
@order_panel("cases_panel", template="admin/orders/case/order_panel.html", position=30)
def order_cases_panel(*, order, user, limit: int = 20) -> dict:
    """The order page's Cases panel: its cases (open first), linked when the user works them."""
    rows = list(
        Case.objects.filter(order=order)
        .select_related("assignee")
        .order_by(F("resolved_at").desc(nulls_first=True), "due_at", "pk")[:limit]
    )
    rows.sort(key=lambda c: (not c.is_open, c.due_at if c.is_open else -c.resolved_at.timestamp()))
    fraud_details = can_see_fraud_details(user)
    return {
        "cases": [
            {
                "case": case,
                # A fraud case's title and resolution are its notes: for those who work fraud.
                "withheld": not fraud_details and case_is_fraud(case.kind),
                "kind": kind_badge(case),
                "status": status_badge(case),
                "due": due_label(case) if case.is_open else "",
                "url": _case_url(case) if cases.can_work(user, case) else "",
            }
            for case in rows
        ],
        "open_count": sum(1 for case in rows if case.is_open),
    }

"""Automation rules and their firings, and the SLA policies: data edited in the cockpit, every edit in the history."""

import datetime
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from oms.core.admin import (
    AuditedAdmin,
    ReadOnlyAdminMixin,
    apply_service_error,
    short_datetime,
)
from oms.core.errors import ValidationError
from orders import automation
from orders.admin.base import OrderRowsAdmin
from orders.fraud_details import actions_touch_risk, can_see_fraud_details
from orders.models import AutomationRule, RuleFiring, SlaPolicy


class AutomationRuleForm(forms.ModelForm):
    class Meta:
        model = AutomationRule
        fields = (
            "name",
            "description",
            "is_active",
            "trigger",
            "priority",
            "channels",
            "min_total",
            "max_total",
            "countries",
            "customer_tags",
            "skus",
            "min_risk_score",
            "include_test_orders",
            "add_tag",
            "hold_reason",
            "case_kind",
            "case_level",
            "notify_emails",
            "risk_score",
        )

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None

    def _post_clean(self):
        super()._post_clean()  # builds self.instance from the cleaned data
        if self.errors:
            return
        try:
            automation.rule_clean(self.instance)
        except ValidationError as exc:
            apply_service_error(self, exc)


class LatestFiringsFormSet(BaseInlineFormSet):
    """The rule's latest firings only: a busy rule has fired millions of times."""

    shown = 50

    def get_queryset(self):
        if self.instance.pk is None:
            return RuleFiring.objects.none()
        if not hasattr(self, "_latest"):
            latest = (
                RuleFiring.objects.filter(rule=self.instance).order_by("-fired_at", "-id").values("pk")[: self.shown]
            )
            self._latest = (
                RuleFiring.objects.filter(pk__in=latest).select_related("order", "event").order_by("-fired_at", "-id")
            )
        return self._latest


class RuleFiringInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = RuleFiring
    formset = LatestFiringsFormSet
    fields = ("fired_column", "order_link", "event_column", "actions_column", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("Latest firings")

    @admin.display(description=_("fired"))
    def fired_column(self, firing):
        return short_datetime(firing.fired_at)

    @admin.display(description=_("order"))
    def order_link(self, firing):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[firing.order_id]), firing.order.number
        )

    @admin.display(description=_("event"))
    def event_column(self, firing):
        return firing.event.get_type_display()

    @admin.display(description=_("actions"))
    def actions_column(self, firing):
        return actions_summary(firing.actions)

    @admin.display(description=_("actions"))
    def actions_column_plain(self, firing):
        return actions_summary(firing.actions, risk=False)

    def get_fields(self, request, obj=None):
        return _plain_columns(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request, obj=None):
        return _plain_columns(request, super().get_readonly_fields(request, obj))


def _plain_columns(request, names):
    """Without the scores a rule raised, for those who do not work fraud (orders.fraud_details)."""
    if can_see_fraud_details(request.user):
        return names
    return tuple("actions_column_plain" if name == "actions_column" else name for name in names)


def actions_summary(actions, *, risk: bool = True) -> str:
    """What a firing did; with risk=False a raised risk score reads as such, without its value."""
    if not actions:
        return "–"
    parts = []
    for item in actions if isinstance(actions, list) else [actions]:
        if isinstance(item, dict) and not risk and item.get("action") == "risk_score":
            parts.append(str(_("risk score raised (for the fraud team)")))
        elif isinstance(item, dict):
            parts.append(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in item.items()))
        else:
            parts.append(str(item))
    return "; ".join(parts)


@admin.register(AutomationRule)
class AutomationRuleAdmin(AuditedAdmin):
    form = AutomationRuleForm
    list_display = ("name", "trigger", "is_active", "priority", "conditions_column", "actions_column", "recent_firings")
    list_display_links = ("name",)
    list_filter = ("is_active", "trigger")
    search_fields = ("name",)
    filter_horizontal = ("channels",)
    inlines = (RuleFiringInline,)
    readonly_fields = ("created_at",)
    recent_days = 7
    fieldsets = (
        (None, {"fields": ("name", "description", "is_active", "trigger", "priority", "created_at")}),
        (
            _("When all of these hold (blank: not checked)"),
            {
                "fields": (
                    "channels",
                    ("min_total", "max_total"),
                    "countries",
                    "customer_tags",
                    "skus",
                    "min_risk_score",
                    "include_test_orders",
                )
            },
        ),
        (
            _("Then do every action set here"),
            {"fields": ("add_tag", "hold_reason", ("case_kind", "case_level"), "notify_emails", "risk_score")},
        ),
    )

    def get_queryset(self, request):
        since = timezone.now() - datetime.timedelta(days=self.recent_days)
        return (
            super()
            .get_queryset(request)
            .prefetch_related("channels")
            .annotate(recent_firing_count=Count("firings", filter=Q(firings__fired_at__gte=since)))
        )

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False  # firings reference their rule (PROTECT): deactivate instead

    @admin.display(description=_("firings (7 days)"), ordering="recent_firing_count")
    def recent_firings(self, rule):
        count = getattr(rule, "recent_firing_count", 0)
        url = reverse("admin:orders_rulefiring_changelist") + f"?rule__id__exact={rule.pk}"
        return format_html('<a href="{}">{}</a>', url, count)

    @admin.display(description=_("conditions"))
    def conditions_column(self, rule):
        parts = []
        channels = [c.code for c in rule.channels.all()]
        if channels:
            parts.append(_("channel %(codes)s") % {"codes": ", ".join(channels)})
        if rule.min_total is not None:
            parts.append(f"≥ {rule.min_total.normalize():f}")
        if rule.max_total is not None:
            parts.append(f"≤ {rule.max_total.normalize():f}")
        for label, value in ((_("country"), rule.countries), (_("tag"), rule.customer_tags), (_("SKU"), rule.skus)):
            if value:
                parts.append(f"{label} {value}")
        if rule.min_risk_score is not None:
            parts.append(_("risk ≥ %(score)s") % {"score": rule.min_risk_score})
        return Truncator(" · ".join(str(p) for p in parts)).chars(90) or _("always")

    @admin.display(description=_("actions"))
    def actions_column(self, rule):
        parts = []
        if rule.add_tag:
            parts.append(_("tag %(tag)s") % {"tag": rule.add_tag})
        if rule.hold_reason:
            parts.append(_("hold: %(reason)s") % {"reason": rule.get_hold_reason_display()})
        if rule.case_kind:
            parts.append(
                _("case: %(kind)s") % {"kind": f"{rule.get_case_kind_display()} ({rule.get_case_level_display()})"}
            )
        if rule.notify_emails:
            parts.append(_("notify %(emails)s") % {"emails": rule.notify_emails})
        if rule.risk_score:
            parts.append(_("risk %(score)s") % {"score": rule.risk_score})
        return Truncator(" · ".join(str(p) for p in parts)).chars(90)


@admin.register(RuleFiring)
class RuleFiringAdmin(OrderRowsAdmin):
    list_display = ("fired_column", "rule", "order_link", "event_column", "actions_column", "error")
    list_filter = ("rule",)
    list_select_related = ("rule", "order", "event")
    fields = ("rule", "order", "event", "fired_at", "actions", "error")

    @admin.display(description=_("fired"))
    def fired_column(self, firing):
        return short_datetime(firing.fired_at)

    @admin.display(description=_("event"))
    def event_column(self, firing):
        return firing.event.get_type_display()

    @admin.display(description=_("actions"))
    def actions_column(self, firing):
        return actions_summary(firing.actions)

    @admin.display(description=_("actions"))
    def actions_column_plain(self, firing):
        return actions_summary(firing.actions, risk=False)

    def get_list_display(self, request):
        return _plain_columns(request, super().get_list_display(request))

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and actions_touch_risk(obj.actions) and not can_see_fraud_details(request.user):
            return ["actions_column_plain" if name == "actions" else name for name in fields]
        return fields

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "actions_column_plain")


SLA_FIELDS = ("payment_to_preparation", "preparation_to_dispatch", "refund")


def _hours(value: datetime.timedelta | None) -> str:
    if value is None:
        return ""
    hours = Decimal(value.total_seconds()) / Decimal(3600)
    return f"{hours.quantize(Decimal('0.01')).normalize():f} h"


class SlaPolicyForm(forms.ModelForm):
    """The durations are typed in hours."""

    class Meta:
        model = SlaPolicy
        fields = ("channel", *SLA_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SLA_FIELDS:
            model_field = SlaPolicy._meta.get_field(name)
            self.fields[name] = forms.DecimalField(
                label=_("%(field)s (hours)") % {"field": model_field.verbose_name},
                min_value=Decimal("0.25"),
                max_value=Decimal("8760"),
                decimal_places=2,
                help_text=model_field.help_text,
            )
            value = getattr(self.instance, name) if self.instance.pk else model_field.get_default()
            if value is not None:
                self.initial[name] = (Decimal(value.total_seconds()) / Decimal(3600)).quantize(Decimal("0.01"))

    def clean(self):
        cleaned = super().clean()
        for name in SLA_FIELDS:
            if cleaned.get(name) is not None:
                cleaned[name] = datetime.timedelta(seconds=int(cleaned[name] * 3600))
        return cleaned


@admin.register(SlaPolicy)
class SlaPolicyAdmin(AuditedAdmin):
    form = SlaPolicyForm
    list_display = ("channel_column", "preparation_hours", "dispatch_hours", "refund_hours")
    list_select_related = ("channel",)
    ordering = ("channel__name",)

    @admin.display(description=_("channel"))
    def channel_column(self, policy):
        return policy.channel.name if policy.channel_id else _("Default (every other channel)")

    @admin.display(description=_("payment → preparation"))
    def preparation_hours(self, policy):
        return _hours(policy.payment_to_preparation)

    @admin.display(description=_("preparation → dispatch"))
    def dispatch_hours(self, policy):
        return _hours(policy.preparation_to_dispatch)

    @admin.display(description=_("refund"))
    def refund_hours(self, policy):
        return _hours(policy.refund)

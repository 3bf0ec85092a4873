"""Query parameters of the order list. Every filter maps to an indexed column or a unique key."""

import datetime

import django_filters
from django import forms
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from orders.choices import FulfillmentStatus, OrderStatus, PaymentStatus
from orders.models import Order
from orders.selectors import order_search_q


class MomentField(forms.Field):
    """An ISO 8601 date-time, or a date: its first instant, or its last with `end_of_day`.

    Naive values are read in the server's time zone (settings.TIME_ZONE).
    """

    default_error_messages = {"invalid": "Enter an ISO 8601 date (2026-01-31) or date-time (2026-01-31T18:00:00Z)."}

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip()
        try:
            if len(text) == 10:
                day = datetime.date.fromisoformat(text)
                moment = datetime.datetime.combine(day, datetime.time.max if self.end_of_day else datetime.time.min)
            else:
                moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        # In UTC: PostgreSQL refuses offsets beyond ±15:59, which ISO 8601 allows (a 500 before).
        try:
            return moment.astimezone(datetime.UTC)
        except OverflowError:  # year 1 or 9999 moved past the calendar's ends: the bound is open
            return datetime.datetime.min.replace(tzinfo=datetime.UTC) if moment.year == 1 else None


class StrictBooleanField(forms.Field):
    """true/false (or 1/0): anything else is an error, not a filter silently left out."""

    default_error_messages = {"invalid": "Enter true or false."}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip().lower()
        if text in {"true", "1"}:
            return True
        if text in {"false", "0"}:
            return False
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class MomentFilter(django_filters.Filter):
    field_class = MomentField


def _moment_filter(*, lookup_expr: str, description: str, end_of_day: bool = False) -> MomentFilter:
    schema = {
        "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}],
        "description": description,
        "example": "2026-01-31",
    }
    return extend_schema_field(schema)(
        MomentFilter(field_name="placed_at", lookup_expr=lookup_expr, end_of_day=end_of_day, help_text=description)
    )


class OrderFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(
        choices=OrderStatus.choices, help_text="Repeat for several: ?status=confirmed&status=in_preparation."
    )
    channel = filters.CharFilter(field_name="channel__code", help_text="The channel's code.")
    payment_status = filters.ChoiceFilter(choices=PaymentStatus.choices)
    fulfillment_status = filters.ChoiceFilter(choices=FulfillmentStatus.choices)
    tag = filters.CharFilter(method="filter_tag", help_text="A tag name (case-insensitive).")
    is_test = StrictBooleanFilter(help_text="true: only test orders; false: only real ones.")
    placed_after = _moment_filter(
        lookup_expr="gte",
        description="Placed at or after: an ISO 8601 date-time, or a date (from its start, server time zone).",
    )
    placed_before = _moment_filter(
        lookup_expr="lte",
        end_of_day=True,
        description="Placed at or before: an ISO 8601 date-time, or a date (to its end, server time zone).",
    )
    q = filters.CharFilter(
        method="filter_search", help_text="Exact order number (or its numeric end), external id or customer e-mail."
    )

    class Meta:
        model = Order
        fields = []

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags__name=value.strip().lower())

    def filter_search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(order_search_q(value))

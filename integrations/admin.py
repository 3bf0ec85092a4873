import json
import uuid
from collections import Counter

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import DatabaseError, connections, transaction
from django.utils.functional import cached_property
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from integrations.models import Notification, OutboxMessage, WebhookEndpoint
from integrations.services import (
    NOTIFICATION_KINDS,
    REPLAY_PERMISSION,
    SEND_NOW_PERMISSION,
    NotificationOutcome,
    notifications_send_now,
    outbox_replay,
)
from oms.core.admin import EstimatedCountPaginator
from oms.core.errors import ApplicationError


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SimpleHistoryAdmin):
    list_display = ("name", "url", "topics", "is_active", "include_test_orders", "created_at")
    list_filter = ("is_active", "include_test_orders")
    search_fields = ("name", "url")
    readonly_fields = ("created_at",)
    ordering = ("name",)


class TimeBoxedCountPaginator(Paginator):
    """An exact count when PostgreSQL gives it quickly, else the planner's estimate.

    The queue holds every message ever sent: an exact `COUNT(*)` on each changelist page would
    grow with it (Django ticket #8408). Pages beyond an over-estimate are simply empty.
    """

    timeout_ms = 200

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return queryset.count()
        try:
            # SET LOCAL ends with this (sub)transaction if the count times out; reset it otherwise.
            with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(self.timeout_ms)}")
                exact = queryset.count()
                cursor.execute("SET LOCAL statement_timeout TO DEFAULT")
                return exact
        except DatabaseError:
            return self.estimated_count()

    def estimated_count(self) -> int:
        queryset = self.object_list
        sql, params = queryset.query.sql_with_params()
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])


class TopicFilter(admin.SimpleListFilter):
    """The topics seen among recent messages: `SELECT DISTINCT topic` over the whole queue would
    scan every row it ever held."""

    title = _("topic")
    parameter_name = "topic"
    recent_rows = 2000

    def lookups(self, request, model_admin):
        recent = OutboxMessage.objects.order_by("-created_at").values_list("topic", flat=True)[: self.recent_rows]
        topics = set(recent)
        if self.value():
            topics.add(self.value())
        return [(topic, topic) for topic in sorted(topics)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(topic=self.value())
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "topic",
        "key",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "short_last_error",
        "created_at",
        "delivered_at",
    )
    list_filter = ("status", TopicFilter, "is_test")
    list_select_related = ("endpoint",)
    search_fields = ("=key",)
    search_help_text = _("Exact key (order number) or message id.")
    ordering = ("-created_at",)
    show_full_result_count = False
    paginator = TimeBoxedCountPaginator
    actions = ("replay_selected",)
    readonly_fields = (
        "id",
        "topic",
        "key",
        "payload",
        "endpoint",
        "destination",
        "is_test",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "delivered_at",
        "replayed_at",
        "replayed_by",
    )

    @admin.display(description=_("last error"))
    def short_last_error(self, obj: OutboxMessage) -> str:
        return Truncator(obj.last_error).chars(80)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        try:
            message_id = uuid.UUID(term)
        except ValueError:
            return super().get_search_results(request, queryset, term)
        return queryset.filter(pk=message_id), False

    # Rows are written by the outbox services only, and never deleted.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm(REPLAY_PERMISSION)

    @admin.action(description=_("Replay selected messages"), permissions=["replay"])
    def replay_selected(self, request, queryset):
        replayed = 0
        errors: Counter[str] = Counter()
        for message_id in queryset.values_list("pk", flat=True):
            try:
                outbox_replay(message_id=message_id, actor=request.user)
            except ApplicationError as exc:
                errors[exc.message] += 1
            else:
                replayed += 1
        if replayed:
            self.message_user(
                request,
                ngettext("%(count)d message replayed.", "%(count)d messages replayed.", replayed) % {"count": replayed},
                level=messages.SUCCESS,
            )
        for error, count in errors.items():
            self.message_user(
                request,
                ngettext(
                    "%(count)d message not replayed: %(error)s", "%(count)d messages not replayed: %(error)s", count
                )
                % {"count": count, "error": error},
                level=messages.ERROR,
            )


class NotificationKindFilter(admin.SimpleListFilter):
    """The kinds the code sends (a fixed list: no `SELECT DISTINCT` over every message ever queued)."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [(kind, kind.replace("_", " ").capitalize()) for kind in sorted(NOTIFICATION_KINDS)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(kind=self.value())
        return queryset


SEND_NOW_MESSAGES = {
    NotificationOutcome.SENT: (
        lambda n: ngettext("%(count)d notification sent.", "%(count)d notifications sent.", n),
        messages.SUCCESS,
    ),
    NotificationOutcome.SKIPPED: (
        lambda n: ngettext(
            "%(count)d notification of a test order skipped (never sent).",
            "%(count)d notifications of test orders skipped (never sent).",
            n,
        ),
        messages.INFO,
    ),
    NotificationOutcome.RETRY_SCHEDULED: (
        lambda n: ngettext(
            "%(count)d notification not sent, a retry is scheduled (see its last error).",
            "%(count)d notifications not sent, retries are scheduled (see their last errors).",
            n,
        ),
        messages.WARNING,
    ),
    NotificationOutcome.FAILED: (
        lambda n: ngettext(
            "%(count)d notification failed again (see its last error).",
            "%(count)d notifications failed again (see their last errors).",
            n,
        ),
        messages.ERROR,
    ),
    NotificationOutcome.UNTOUCHED: (
        lambda n: ngettext(
            "%(count)d notification left alone: already sent or skipped, or being sent right now.",
            "%(count)d notifications left alone: already sent or skipped, or being sent right now.",
            n,
        ),
        messages.WARNING,
    ),
}


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = (
        "order_number",
        "kind",
        "recipient",
        "locale",
        "status",
        "attempts",
        "send_after",
        "sent_at",
        "short_last_error",
        "is_test",
    )
    list_filter = (NotificationKindFilter, "status", "is_test")
    search_fields = ("order_number",)  # shows the search box; get_search_results does the matching
    search_help_text = _("Exact order number or recipient e-mail address.")
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = ("send_now",)
    readonly_fields = (
        "kind",
        "channel",
        "recipient",
        "locale",
        "order_number",
        "group_key",
        "data",
        "is_test",
        "status",
        "send_after",
        "attempts",
        "subject",
        "body",
        "last_error",
        "created_at",
        "sent_at",
    )

    @admin.display(description=_("last error"))
    def short_last_error(self, obj: Notification) -> str:
        return Truncator(obj.last_error).chars(80)

    def get_search_results(self, request, queryset, search_term):
        # Exact matches only, on what support has at hand: the order number (indexed) or the address.
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            return queryset.filter(recipient__iexact=term), False
        return queryset.filter(order_number=term.upper()), False

    # Rows are written by the notification services only.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_send_permission(self, request) -> bool:
        return request.user.has_perm(SEND_NOW_PERMISSION)

    @admin.action(description=_("Send selected notifications now"), permissions=["send"])
    def send_now(self, request, queryset):
        try:
            outcomes = notifications_send_now(
                notification_ids=list(queryset.values_list("pk", flat=True)), actor=request.user
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return
        for outcome, (text, level) in SEND_NOW_MESSAGES.items():
            if count := outcomes.get(outcome, 0):
                self.message_user(request, text(count) % {"count": count}, level=level)

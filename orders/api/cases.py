"""The cases API: the queues a user works, one case, and the three things done to it.

Same services as the cockpit (orders.cases); a user sees only the kinds and levels they work, so a
case outside them is a 404, not a 403 that would say it exists.
"""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from oms.core.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    IdCursorPagination,
    PermissionRequired,
    StrictInputSerializer,
    WriteApi,
    api_errors,
    validated_input,
)
from oms.core.errors import NotFoundError, ValidationError
from orders import cases
from orders.choices import CaseDecision, CaseKind, CaseLevel, CaseStatus
from orders.models import Case
from orders.selectors import order_scope_q

_ERRORS = api_errors(
    invalid=True,
    unauthenticated=True,
    forbidden="The user may not do this to this case.",
    not_found="No such case in your queues (`case_not_found`).",
    conflict="The case's state does not allow this now.",
    key_reused=True,
)


class CaseSerializer(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number", default=None, allow_null=True)
    customer = serializers.EmailField(source="customer.email", default=None, allow_null=True)
    assignee = serializers.CharField(source="assignee.username", default=None, allow_null=True)
    opened_by = serializers.CharField(source="opened_by.username")
    resolved_by = serializers.CharField(source="resolved_by.username", default=None, allow_null=True)
    team = serializers.CharField()
    is_overdue = serializers.BooleanField()

    class Meta:
        model = Case
        fields = [
            "number",
            "kind",
            "level",
            "status",
            "team",
            "title",
            "facts",
            "order",
            "customer",
            "assignee",
            "due_at",
            "is_overdue",
            "opened_by",
            "opened_at",
            "escalated_at",
            "escalation_reason",
            "resolved_at",
            "resolved_by",
            "decision",
            "resolution",
            "evidence",
        ]


class CaseAssignInputSerializer(StrictInputSerializer):
    assignee = serializers.CharField(required=False, help_text="A username; yourself when omitted.")


class CaseEscalateInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(help_text="Why level 2 must take it.")


class CaseResolveInputSerializer(StrictInputSerializer):
    decision = serializers.ChoiceField(choices=CaseDecision.choices)
    resolution = serializers.CharField(help_text="What was done, in words.")
    evidence = serializers.DictField(required=False, help_text="What the decision rests on.")


class CanViewCases(PermissionRequired):
    perm = "orders.view_case"
    message = "You do not have permission to view cases."


def _visible(user):
    # The queues the user works, and for an API client only cases about its channels' orders.
    return Case.objects.filter(cases.case_scope_q(user)).filter(order_scope_q(user, "order"))


def _case(user, number: str) -> Case:
    found = _visible(user).select_related("order", "customer", "assignee", "opened_by", "resolved_by")
    case = found.filter(number=number).first()
    if case is None:
        raise NotFoundError(f"Case {number} not found in your queues.", code="case_not_found")
    return case


class CaseListApi(generics.ListAPIView):
    """Open cases of the queues you work, most urgent first (filters: kind, level, status, order, mine)."""

    permission_classes = [IsAuthenticated, CanViewCases]
    serializer_class = CaseSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        params = self.request.query_params
        errors = {}
        qs = _visible(self.request.user).select_related("order", "customer", "assignee", "opened_by", "resolved_by")
        status = params.get("status", "open")
        if status == "open":
            qs = qs.exclude(status=CaseStatus.RESOLVED)
        elif status in CaseStatus.values:
            qs = qs.filter(status=status)
        elif status != "all":
            errors["status"] = [f"One of: open, all, {', '.join(CaseStatus.values)}."]
        for field, choices in (("kind", CaseKind.values), ("level", CaseLevel.values)):
            if value := params.get(field):
                if value not in choices:
                    errors[field] = [f"One of: {', '.join(choices)}."]
                qs = qs.filter(**{field: value})
        if number := params.get("order"):
            qs = qs.filter(order__number=number)
        if params.get("mine") in {"1", "true"}:
            qs = qs.filter(assignee=self.request.user)
        if errors:
            raise ValidationError("Invalid filter.", fields=errors)
        return qs


class CaseDetailApi(APIView):
    permission_classes = [IsAuthenticated, CanViewCases]

    @extend_schema(tags=["cases"], summary="One case", responses={200: CaseSerializer, **_ERRORS})
    def get(self, request, number: str):
        return Response(CaseSerializer(_case(request.user, number)).data)


class CaseActionApi(WriteApi):
    permission_classes = [IsAuthenticated, CanViewCases]


class CaseAssignApi(CaseActionApi):
    @extend_schema(
        tags=["cases"],
        summary="Take a case, or give it to someone who works its queue",
        request=CaseAssignInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: CaseSerializer, **_ERRORS},
    )
    def post(self, request, number: str):
        case = _case(request.user, number)
        data = validated_input(CaseAssignInputSerializer, request.data)
        assignee = None
        if data.get("assignee"):
            assignee = get_user_model().objects.filter(username=data["assignee"], is_active=True).first()
            if assignee is None:
                raise ValidationError("Unknown user.", fields={"assignee": ["No active user with this username."]})
        cases.case_assign(case=case, actor=request.user, assignee=assignee)
        return Response(CaseSerializer(_case(request.user, number)).data)


class CaseEscalateApi(CaseActionApi):
    @extend_schema(
        tags=["cases"],
        summary="Escalate a level 1 case to level 2",
        request=CaseEscalateInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: CaseSerializer, **_ERRORS},
    )
    def post(self, request, number: str):
        case = _case(request.user, number)
        data = validated_input(CaseEscalateInputSerializer, request.data)
        case = cases.case_escalate(case=case, actor=request.user, reason=data["reason"])
        # Escalated out of an L1 agent's queues: answer with the case as it is now.
        return Response(CaseSerializer(Case.objects.select_related("order").get(pk=case.pk)).data)


class CaseResolveApi(CaseActionApi):
    @extend_schema(
        tags=["cases"],
        summary="Resolve a case with the decision taken",
        description="Refused (409 `source_still_open`) while what the case is about is still open "
        "where it was detected (an active hold, an open short pick): resolve it there.",
        request=CaseResolveInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: CaseSerializer, **_ERRORS},
    )
    def post(self, request, number: str):
        case = _case(request.user, number)
        data = validated_input(CaseResolveInputSerializer, request.data)
        cases.case_resolve(case=case, actor=request.user, **data)
        return Response(CaseSerializer(_case(request.user, number)).data)

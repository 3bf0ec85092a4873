"""The hooks registry: typed emits, in-transaction refusals, after-commit ids, and the reviewed table."""

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from oms.core import hooks
from oms.core.errors import ConflictError
from orders.models import Tag

SNAPSHOT = Path(__file__).with_name("hooks.txt")


@pytest.fixture
def hook():
    declared = hooks.Hook("test.thing_happened", owner="tests", args=("thing", "actor"), doc="For these tests.")
    yield declared
    hooks._REGISTRY.pop(declared.name)


def test_emit_refuses_arguments_the_hook_does_not_declare(hook):
    with pytest.raises(TypeError, match=r"missing \['actor'\], unknown \['other'\]"):
        hook.emit(thing=1, other=2)


def test_a_hook_cannot_be_declared_twice(hook):
    with pytest.raises(RuntimeError, match="declared twice"):
        hooks.Hook("test.thing_happened", owner="tests", args=(), doc="")


def test_subscribing_twice_runs_once_and_in_subscription_order(hook):
    calls = []

    def first(**kwargs):
        calls.append(("first", kwargs))

    def second(**kwargs):
        calls.append(("second", kwargs))

    hook.subscribe(first)
    hook.subscribe(second)
    hook.subscribe(first)
    hook.emit(thing="x", actor=None)
    assert calls == [("first", {"thing": "x", "actor": None}), ("second", {"thing": "x", "actor": None})]


@pytest.mark.django_db
def test_an_in_transaction_subscriber_refuses_the_change_and_nothing_is_kept(hook):
    def refuse(*, thing, actor):
        raise ConflictError("Not this one.", code="refused")

    hook.subscribe(refuse)
    with pytest.raises(ConflictError, match="Not this one."):
        with transaction.atomic():
            tag = Tag.objects.create(name="refused-tag")
            hook.emit(thing=tag, actor=None)
    assert not Tag.objects.filter(name="refused-tag").exists()


@pytest.mark.django_db
def test_after_commit_subscribers_get_ids_once_the_transaction_commits(hook, django_capture_on_commit_callbacks):
    received = []

    def later(**kwargs):
        received.append(kwargs)

    hook.subscribe(later, after_commit=True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            tag = Tag.objects.create(name="committed-tag")
            hook.emit(thing=tag, actor=None)
            assert received == []  # nothing before the commit
    assert len(callbacks) == 1
    assert received == [{"thing_id": tag.pk, "actor": None}]


@pytest.mark.django_db
def test_after_commit_subscribers_never_run_when_the_transaction_rolls_back(hook, django_capture_on_commit_callbacks):
    received = []
    hook.subscribe(received.append, after_commit=True)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(ConflictError):
            with transaction.atomic():
                hook.emit(thing=[Tag.objects.create(name="a"), Tag.objects.create(name="b")], actor=None)
                raise ConflictError("rolled back")
    assert callbacks == []
    assert received == []


def test_collect_returns_the_answers_of_in_transaction_subscribers_only(hook):
    hook.subscribe(lambda *, thing, actor: None)
    hook.subscribe(lambda *, thing, actor: f"open: {thing}")
    hook.subscribe(lambda **kwargs: "never asked", after_commit=True)
    assert hook.collect(thing="short pick 7", actor=None) == ["open: short pick 7"]


def test_manage_py_hooks_prints_the_reviewed_table():
    """A new hook or subscription is a reviewed diff: regenerate with
    `.venv/bin/python manage.py hooks > oms/core/tests/hooks.txt` and read the change."""
    out = io.StringIO()
    call_command("hooks", stdout=out)
    assert out.getvalue() == SNAPSHOT.read_text()
    assert "order.units_to_plan(order, actor)" in out.getvalue()

"""The hooks registry: how a lower app lets a higher one react without importing it.

The apps form one chain (STYLE.md): oms.core → integrations → inventory → orders → fulfillment →
billing → returns → b2b → the roofs. A module imports only from its own app or a lower one. When a
lower app must let a higher one react (an order was prepared, so fulfillment plans parcels; a parcel
shipped, so billing invoices it), the lower app declares a `Hook` in its `hooks.py` and emits it;
the higher app subscribes in its `AppConfig.ready()`:

- ``hook.subscribe(fn)``: *in the transaction*. ``fn(**kwargs)`` runs inside the emitter's
  transaction, in subscription order, with the emitter's arguments (model instances included). It
  may refuse the change by raising an ``ApplicationError``; the emitter's transaction rolls back.
- ``hook.subscribe(fn, after_commit=True)``: *after commit*. ``fn(**ids)`` runs once the
  transaction has committed (never if it rolled back), with ids only: each model argument ``x``
  arrives as ``x_id``, a list of models ``xs`` as ``xs_ids``. Typically it enqueues a task.

A lower app may also *ask* (``hook.collect(**kwargs)``): the in-transaction subscribers run and
their answers (every value but ``None``) come back as a list, e.g. "is this case's source still
open?" answered by the app that owns the source.

A hook is *typed*: it names its arguments once, and ``emit`` refuses any other set. Subscribers run
in the order the apps are installed (INSTALLED_APPS), so the order is fixed and reviewed:
``python manage.py hooks`` prints every hook with its subscribers, and a snapshot test keeps that
table under review.

`OrderEvent` stays the record of what happened to an order, and the outbox stays the channel
between processes; hooks are only the in-process wiring between apps.
"""

from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass, field

from django.db import models, transaction

_REGISTRY: dict[str, Hook] = {}


@dataclass(frozen=True)
class Subscriber:
    function: object
    after_commit: bool

    @property
    def name(self) -> str:
        fn = self.function
        return f"{fn.__module__}.{fn.__qualname__}"


@dataclass(eq=False)
class Hook:
    """One event a lower app emits. Declare it at module level in the emitting app's hooks.py."""

    name: str
    owner: str
    args: tuple[str, ...]
    doc: str
    subscribers: list[Subscriber] = field(default_factory=list)

    def __post_init__(self):
        if self.name in _REGISTRY:
            raise RuntimeError(f"Hook {self.name!r} is declared twice.")
        _REGISTRY[self.name] = self

    def subscribe(self, function=None, *, after_commit: bool = False):
        """Subscribe `function` (idempotent: ready() may run twice in tests). Usable as a decorator."""
        if function is None:
            return functools.partial(self.subscribe, after_commit=after_commit)
        subscriber = Subscriber(function=function, after_commit=after_commit)
        if subscriber not in self.subscribers:
            self.subscribers.append(subscriber)
        return function

    def _check(self, kwargs: dict) -> None:
        if set(kwargs) != set(self.args):
            missing = sorted(set(self.args) - set(kwargs))
            unknown = sorted(set(kwargs) - set(self.args))
            raise TypeError(f"Hook {self.name!r} takes {self.args}; missing {missing}, unknown {unknown}.")

    def emit(self, **kwargs) -> None:
        """Run the in-transaction subscribers now, and queue the after-commit ones on commit."""
        self._check(kwargs)
        ids = None
        for subscriber in self.subscribers:
            if subscriber.after_commit:
                if ids is None:
                    ids = _as_ids(kwargs)
                transaction.on_commit(functools.partial(subscriber.function, **ids))
            else:
                subscriber.function(**kwargs)

    def collect(self, **kwargs) -> list:
        """Ask the in-transaction subscribers; return their answers (None answers are left out)."""
        self._check(kwargs)
        answers = []
        for subscriber in self.subscribers:
            if not subscriber.after_commit:
                answer = subscriber.function(**kwargs)
                if answer is not None:
                    answers.append(answer)
        return answers


def _as_ids(kwargs: dict) -> dict:
    """Model instances become their primary keys: after commit, subscribers re-read what they need."""
    out = {}
    for key, value in kwargs.items():
        if isinstance(value, models.Model):
            out[f"{key}_id"] = value.pk
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, models.Model) for v in value):
            out[f"{key}_ids"] = [v.pk for v in value]
        else:
            out[key] = value
    return out


def hooks_all() -> list[Hook]:
    """Every declared hook, by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def hooks_table() -> str:
    """The table `manage.py hooks` prints: each hook, its arguments, its subscribers in run order."""
    out = []
    for hook in hooks_all():
        out.append(f"{hook.name}({', '.join(hook.args)})  [{hook.owner}]")
        out.extend(textwrap.wrap(hook.doc, 100, initial_indent="    ", subsequent_indent="    "))
        if not hook.subscribers:
            out.append("    (no subscribers)")
        for position, subscriber in enumerate(hook.subscribers, start=1):
            when = "after commit" if subscriber.after_commit else "in transaction"
            out.append(f"    {position}. {when:<14}  {subscriber.name}")
    return "\n".join(out) + "\n"

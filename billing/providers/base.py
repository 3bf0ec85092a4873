"""The payment-provider adapter interface: what billing asks of a provider, whoever it is.

An adapter turns the provider's webhook payload into `ProviderEvent`s (our vocabulary) and sends
refunds. It never touches the database: the services store, lock and apply.
"""

import abc
import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from oms.core.errors import ApplicationError, NotFoundError

# What a provider can tell us about a payment (PaymentEvent.kind).
EVENT_KINDS = ("authorized", "captured", "failed", "refunded", "dispute_opened")


class ProviderError(ApplicationError):
    """The provider refused or could not be reached: nothing was done there."""

    status_code = 502
    default_code = "provider_error"


@dataclass(frozen=True)
class ProviderEvent:
    event_id: str
    kind: str
    payment_reference: str
    amount: Decimal | None = None
    currency: str = ""
    method: str = ""
    order_number: str = ""
    reason: str = ""
    refund_reference: str = ""
    dispute_reference: str = ""
    respond_by: datetime.datetime | None = None
    raw: dict = field(default_factory=dict)


class PaymentProvider(abc.ABC):
    code: str = ""
    name: str = ""

    @abc.abstractmethod
    def parse_event(self, payload) -> ProviderEvent:
        """The provider's notification as our event; oms.core.errors.ValidationError when malformed."""

    @abc.abstractmethod
    def refund(self, payment, amount: Decimal, idempotency_key: str) -> str:
        """Refund `amount` of a captured payment; returns the provider's refund reference.

        The same idempotency key returns the same reference (providers deduplicate on it), so a
        retried refund is never paid twice. Raises ProviderError when the provider refuses."""


_REGISTRY: dict[str, PaymentProvider] = {}


def register(provider: PaymentProvider) -> PaymentProvider:
    _REGISTRY[provider.code] = provider
    return provider


def get_provider(code: str) -> PaymentProvider:
    try:
        return _REGISTRY[code]
    except KeyError:
        raise NotFoundError(f"Payment provider {code} not found.", code="provider_not_found") from None


def provider_codes() -> list[str]:
    return sorted(_REGISTRY)

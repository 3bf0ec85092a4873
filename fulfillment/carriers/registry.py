"""Carrier adapters by code. The registry maps codes to classes (configuration, not mutable state)."""

from fulfillment.carriers.base import CarrierAdapter
from fulfillment.carriers.sandbox import SandboxCarrier
from oms.core.errors import ValidationError

CARRIERS: dict[str, type[CarrierAdapter]] = {
    SandboxCarrier.code: SandboxCarrier,
}


def get_carrier(code: str) -> CarrierAdapter:
    adapter_class = CARRIERS.get(code)
    if adapter_class is None:
        raise ValidationError(
            f"Unknown carrier {code!r}.",
            code="unknown_carrier",
            fields={"carrier": [f"Choose one of {', '.join(sorted(CARRIERS))}."]},
        )
    return adapter_class()

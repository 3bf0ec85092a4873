"""Carrier errors with stable codes (bad input stays `oms.core.errors.ValidationError`)."""

from oms.core.errors import ConflictError


class CarrierError(ConflictError):
    """The carrier refused or could not do what was asked; the caller may retry or choose otherwise."""

    default_code = "carrier_error"


class CarrierUnavailableError(CarrierError):
    default_code = "carrier_unavailable"


class LabelCancelRefusedError(CarrierError):
    """The label can no longer be voided (already scanned by the carrier)."""

    default_code = "label_cancel_refused"

"""Issued documents never change: corrections are credit notes.

`BillingConfig.ready()` connects `refuse_update` to the pre-save signal of every model in
`IMMUTABLE_MODELS`, so the guard holds however a document is reached (service, admin, shell), and
not only once `billing.services.invoices` happens to be imported.
"""

from billing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, InvoiceTax
from oms.core.errors import ConflictError

IMMUTABLE_MODELS = (Invoice, InvoiceLine, InvoiceTax, CreditNote, CreditNoteLine)


def refuse_update(sender, instance, raw=False, **kwargs) -> None:
    """An issued document is never saved again. (Inserts pass; billing has no update path, and the
    cockpit is read-only.)"""
    if raw or instance._state.adding:
        return
    raise ConflictError(
        f"{sender._meta.verbose_name.capitalize()} {instance} is issued and cannot be changed: issue a credit note.",
        code="document_immutable",
    )


def dispatch_uid(model) -> str:
    return f"billing_immutable_{model._meta.model_name}"

"""Payment-provider adapters (`base.PaymentProvider`); `base.get_provider(code)` finds one.

Each adapter module registers itself when imported; importing the package imports them, so the
registry is full whichever module of the package is imported first.
"""

from billing.providers import sandbox  # noqa: F401 (registers the offline sandbox)

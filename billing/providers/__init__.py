"""Payment-provider adapters (`base.PaymentProvider`); `base.get_provider(code)` finds one."""

"""Every write to money records: payments and invoices (`payments`, `invoices`), refunds, store credit,
vouchers and disputes (`refunds`, `credits`, `disputes`), exports (`exports`). Import the module you need."""

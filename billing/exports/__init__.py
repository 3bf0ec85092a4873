"""Accounting and finance exports: where their rows come from (`sources`) and how each format is
written (`csv`, `xlsx`, `fec`, `reconciliation`). Writers are pure streaming functions over rows:
they never hold a whole file, so a month of a large shop exports in constant memory. The services
(billing.services.exports) check permissions and run them, at once or in the background.
"""

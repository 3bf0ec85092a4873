"""Carrier adapters: labels, tracking URLs, status mapping and tracking webhooks, per carrier.

`registry.get_carrier(code)` is the entry point; `base` holds the contract and its data types.
"""

"""Destination handlers: each takes one OutboxMessage, sends it, and raises on any failure."""

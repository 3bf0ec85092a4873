"""Cockpit pages of billing (filled in by its issue)."""

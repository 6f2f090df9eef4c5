"""Registers: what writes the store besides the finance assumptions (import, initiatives, demo, backup)."""

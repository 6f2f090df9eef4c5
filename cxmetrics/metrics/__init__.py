"""Metrics: one metric family per module, SQL over the store's relations, statistics in Python."""

"""Prometheus exposition of salespulse's state."""

"""salespulse: CRM events in Kafka, per-manager sales KPIs out as Prometheus metrics."""

__version__ = "0.1.0"

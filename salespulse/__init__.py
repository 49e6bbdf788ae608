"""salespulse: CRM events in Kafka, per-manager sales KPIs out as Prometheus metrics.

The package holds the product's configuration (settings, config/: the
configuration layer), the runtime around Faust and Kafka (worker, broker,
topics, kafka_security) and the applications people run (cli, top, ingest,
importer, simulate); README, "Layout", says which layer each is in.
"""

__version__ = "0.1.0"

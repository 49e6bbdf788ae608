"""``salespulse report``: what an intervention or a KPI change did, read from Prometheus."""

"""Deployment files; Python only where they are generated (Grafana dashboards as code)."""

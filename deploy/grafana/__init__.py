"""Grafana dashboards as code: sources in dashboards_src/, rendered JSON in dashboards/."""

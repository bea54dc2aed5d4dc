"""Grafana dashboards, provisioning files and the push command."""

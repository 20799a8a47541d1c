"""Metrics: series kept per host, the sources they come from, and the canary analysis."""

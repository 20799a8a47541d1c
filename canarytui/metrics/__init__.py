"""Metrics: series kept per host, the sources they come from, and the canary analysis."""

STOPPED = "stopped answering"  # how the rules of a canary that went silent say so

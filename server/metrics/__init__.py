"""The station's metrics for Prometheus."""

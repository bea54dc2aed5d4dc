"""Sinks deliver buffered Samples to a destination (MQTT, InfluxDB)."""

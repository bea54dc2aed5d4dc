"""The edgefab edge gateway: connectors -> pipeline -> durable buffer -> sinks."""

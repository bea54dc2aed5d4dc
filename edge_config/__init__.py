"""edge_config: the YAML site configuration (schema, loader, precise errors)."""

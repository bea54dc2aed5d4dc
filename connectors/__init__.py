"""Protocol connectors: each reads one kind of machine and yields Samples."""

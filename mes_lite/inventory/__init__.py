"""Warehouse, logistics and lot traceability: pure core (stock, picking, genealogy) plus persistence and services."""

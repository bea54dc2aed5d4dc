"""mes_lite: a small MES (production, OEE, warehouse, traceability)."""

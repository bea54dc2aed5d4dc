"""The MES REST API (FastAPI): thin routes over the service modules."""

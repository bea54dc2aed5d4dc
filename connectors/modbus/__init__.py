"""Modbus TCP and RTU connector."""

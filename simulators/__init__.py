"""Simulated PLCs: one machine model exposed over OPC UA and Modbus TCP."""

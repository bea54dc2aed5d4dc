"""Alarms evaluated in the gateway (ISA-18.2 lifecycle), published on the UNS and notified; see docs/alarms.md."""

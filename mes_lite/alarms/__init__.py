"""MES side of alarms: alarm events from the UNS stored with history, ISA-18.2 KPIs, acknowledgement and
machine commands (alarm acks, target quantities) sent to the gateway through an outbox. See docs/alarms.md."""

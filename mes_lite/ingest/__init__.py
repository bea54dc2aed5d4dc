"""MES ingest: UNS messages of OEE-role tags -> machine-state intervals and production counts.

`events` is the pure core (parsing, dedupe, reordering, counter rollover/reset, role semantics);
`writer` applies events to the database through the production service; `runner` is the thin
MQTT shell (paho-mqtt 2.x) behind `edgefab mes run`.
"""

#!/bin/bash
# Runs once, on the first start of the influxdb:2.7 container (docker-entrypoint-initdb.d), after
# the DOCKER_INFLUXDB_INIT_* setup created org, bucket and admin token. It maps the InfluxQL
# database "<bucket>" / retention policy "autogen" to the bucket (DBRP), so that Grafana's
# InfluxQL queries (and any InfluxDB 1.x tool) read the bucket the gateway writes to.
set -euo pipefail

influx v1 dbrp create \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --db "${DOCKER_INFLUXDB_INIT_BUCKET}" \
  --rp autogen \
  --default \
  --token "${DOCKER_INFLUXDB_INIT_ADMIN_TOKEN}"

echo "edgefab: InfluxQL database ${DOCKER_INFLUXDB_INIT_BUCKET}/autogen -> bucket ${DOCKER_INFLUXDB_INIT_BUCKET}"

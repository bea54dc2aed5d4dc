"""`edgefab dashboards push`: upload the edgefab data sources and dashboards to an existing Grafana."""

from __future__ import annotations

import argparse
import os
import sys


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("dashboards", help="Grafana dashboards")
    commands = parser.add_subparsers(dest="dashboards_command", required=True)
    push = commands.add_parser(
        "push",
        help="create or update the edgefab data sources and dashboards on a Grafana (idempotent)",
        description="Looks everything up by uid: updates what exists, creates what does not, never duplicates.",
    )
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. http://grafana.plant.lan:3000")
    push.add_argument(
        "--token",
        default=os.environ.get("GRAFANA_TOKEN"),
        help="service-account token (Admin role for data sources); default: $GRAFANA_TOKEN",
    )
    push.add_argument("--folder", default="edgefab", help="dashboard folder (created if missing)")
    push.add_argument("--influx-url", help="InfluxDB URL as Grafana reaches it, e.g. http://influxdb:8086")
    push.add_argument("--influx-database", default="factory", help="InfluxQL database (2.x: the bucket's DBRP mapping)")
    push.add_argument("--influx-token", default=os.environ.get("INFLUX_TOKEN"), help="default: $INFLUX_TOKEN")
    push.add_argument("--postgres-url", help="MES database as Grafana reaches it: postgresql://user:pw@host:5432/db")
    push.add_argument("--timeout-s", type=float, default=10.0, help="HTTP timeout per request")
    push.set_defaults(func=run_push)


def run_push(args: argparse.Namespace) -> int:
    from grafana_client import GrafanaApi

    from dashboards.push import DataSourceOptions, PushError, push

    if not args.token:
        print("edgefab dashboards push: give --token or set GRAFANA_TOKEN", file=sys.stderr)
        return 2
    if not args.url.startswith(("http://", "https://")):
        print(f"edgefab dashboards push: --url {args.url!r} must start with http:// or https://", file=sys.stderr)
        return 2
    options = DataSourceOptions(
        influx_url=args.influx_url,
        influx_database=args.influx_database,
        influx_token=args.influx_token,
        postgres_url=args.postgres_url,
    )
    try:
        api = GrafanaApi.from_url(args.url, credential=args.token, timeout=args.timeout_s)
        report = push(api, options, folder_title=args.folder)
    except PushError as error:
        print(f"edgefab dashboards push: {error}", file=sys.stderr)
        return 1
    for line in report.actions:
        print(line)
    return 0

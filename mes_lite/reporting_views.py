"""PostgreSQL views and functions that Grafana's SQL panels read: OEE, machine states, counts, stock.

The OEE function is the API's OEE (`mes_lite.services.oee_query` + `mes_lite.oee`) written in
SQL, so a Grafana panel and the MES show the same number for the same window:

- planned operation time (POT): the site's active shifts, expanded per local day in the site's
  time zone (weekdays, holidays, shifts over midnight belong to the day they start), clipped to
  the window; a site without shifts plans the whole window (24/7);
- planned down time (PDOT): breaks and planned stops (the site's and the work center's) inside
  POT, plus state intervals in the `planned_down` category;
- state sums: intervals flagged `planned_busy`, clipped at the window's edges, an open interval
  ending "now"; a fault/idle episode shorter than the micro-stop threshold is a micro stop
  (part of actual production time);
- counts inside planned busy time; ideal production time = produced x ideal cycle time;
- the window ends at "now" at the latest (the future is not planned busy time yet);
- aggregates (line, area, site) add times and counts and compute the ratios once.

Span arithmetic uses int8 multiranges (PostgreSQL 14+). Times are UTC nanoseconds like the tables.
The Alembic revision `0301_dashboards` installs `CREATE_SQL`; a later change to this SQL needs a new
revision that runs it again (every statement is CREATE OR REPLACE).
"""

from __future__ import annotations

OBJECTS = (
    "edgefab_oee(timestamptz, timestamptz, text, double precision, timestamptz, text)",
    "edgefab_oee_inputs(timestamptz, timestamptz, double precision, timestamptz, text)",
    "edgefab_oee_inputs_ns(bigint, bigint, bigint, bigint, text)",
    "edgefab_calendar_ns(integer, integer, bigint, bigint, text)",
    "edgefab_ns(timestamptz)",
)
VIEWS = (
    "edgefab_stock_low",
    "edgefab_stock_on_hand",
    "edgefab_work_order_progress",
    "edgefab_scrap",
    "edgefab_production_counts",
    "edgefab_machine_state_now",
    "edgefab_state_intervals",
    "edgefab_work_centers",
)

CREATE_SQL = r"""
CREATE OR REPLACE FUNCTION edgefab_ns(t timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT (floor(extract(epoch FROM t) * 1000000) * 1000)::bigint
$$;

-- POT and PDOT (ns) of one work center of one site over [p_start, p_end): see shift_calendar.expand_calendar
CREATE OR REPLACE FUNCTION edgefab_calendar_ns(
  p_site_id integer, p_work_center_id integer, p_start bigint, p_end bigint, p_default_tz text DEFAULT 'UTC'
) RETURNS TABLE (planned_operation_ns bigint, planned_down_ns bigint)
LANGUAGE sql STABLE AS $$
  WITH site AS (
    SELECT coalesce(s.timezone, p_default_tz) AS tz FROM sites s WHERE s.id = p_site_id
  ),
  window_ AS (
    SELECT int8multirange(int8range(p_start, greatest(p_start, p_end))) AS w
  ),
  days AS (
    SELECT d::date AS day
    FROM site, generate_series(
      (to_timestamp(p_start / 1e9) AT TIME ZONE site.tz)::date - 1,
      (to_timestamp(p_end / 1e9) AT TIME ZONE site.tz)::date,
      interval '1 day') AS d
  ),
  occurrences AS (
    SELECT sh.id AS shift_id, sh.start_time, d.day,
           int8range(edgefab_ns((d.day + sh.start_time) AT TIME ZONE site.tz),
                     edgefab_ns((d.day + CASE WHEN sh.end_time > sh.start_time THEN 0 ELSE 1 END + sh.end_time)
                                AT TIME ZONE site.tz)) AS span
    FROM shifts sh CROSS JOIN days d CROSS JOIN site
    WHERE sh.site_id = p_site_id AND sh.active
      AND strpos(sh.weekdays, extract(isodow FROM d.day)::int::text) > 0
      AND NOT EXISTS (SELECT 1 FROM holidays h WHERE h.site_id = p_site_id AND h.day = d.day)
  ),
  operation AS (
    SELECT CASE
      WHEN NOT EXISTS (SELECT 1 FROM shifts sh WHERE sh.site_id = p_site_id AND sh.active) THEN (SELECT w FROM window_)
      ELSE coalesce((SELECT range_agg(o.span) FROM occurrences o), '{}'::int8multirange) * (SELECT w FROM window_)
    END AS pot
  ),
  break_spans AS (
    SELECT int8range(edgefab_ns((bd.day + b.start_time) AT TIME ZONE site.tz),
                     edgefab_ns((bd.day + CASE WHEN b.end_time > b.start_time THEN 0 ELSE 1 END + b.end_time)
                                AT TIME ZONE site.tz)) * o.span AS span
    FROM occurrences o
    JOIN breaks b ON b.shift_id = o.shift_id
    CROSS JOIN site
    CROSS JOIN LATERAL (SELECT o.day + CASE WHEN b.start_time >= o.start_time THEN 0 ELSE 1 END AS day) bd
  ),
  stop_spans AS (
    SELECT int8range(ps.start_ns, ps.end_ns) AS span
    FROM planned_stops ps
    WHERE ps.site_id = p_site_id AND ps.start_ns < p_end AND ps.end_ns > p_start
      AND (ps.work_center_id IS NULL OR ps.work_center_id = p_work_center_id)
  ),
  down AS (
    SELECT coalesce(range_agg(x.span), '{}'::int8multirange) * (SELECT pot FROM operation) AS pdot
    FROM (SELECT span FROM break_spans UNION ALL SELECT span FROM stop_spans) x
  )
  SELECT
    coalesce((SELECT sum(upper(r) - lower(r)) FROM operation, unnest(operation.pot) r), 0)::bigint,
    coalesce((SELECT sum(upper(r) - lower(r)) FROM down, unnest(down.pdot) r), 0)::bigint
$$;

-- OEE inputs (seconds and quantities) per active work center: see oee_query.inputs_per_work_center
-- (nanosecond bounds as plain arguments so that the planner uses the indexes on end_ns and ts_ns)
CREATE OR REPLACE FUNCTION edgefab_oee_inputs_ns(
  ws bigint, we bigint, now_ns bigint, micro_ns bigint, default_tz text
) RETURNS TABLE (
@INPUT_COLUMNS@
)
LANGUAGE sql STABLE AS $$
  WITH wcs AS (
    SELECT wc.id, s.id AS site_id, s.code AS site, a.code AS area, l.code AS line, wc.code AS machine
    FROM work_centers wc JOIN lines l ON l.id = wc.line_id JOIN areas a ON a.id = l.area_id
    JOIN sites s ON s.id = a.site_id
    WHERE wc.active
  ),
  intervals AS (  -- closed ones ending inside or after the window, and the open ones (two index scans)
    SELECT m.work_center_id, m.start_ns, m.end_ns, m.category, m.episode_ns
    FROM machine_state_intervals m
    WHERE m.work_center_id IN (SELECT id FROM wcs) AND m.end_ns > ws AND m.start_ns < we AND m.planned_busy
      AND m.start_ns < now_ns
    UNION ALL
    SELECT m.work_center_id, m.start_ns, m.end_ns, m.category, m.episode_ns
    FROM machine_state_intervals m
    WHERE m.work_center_id IN (SELECT id FROM wcs) AND m.end_ns IS NULL AND m.start_ns < we AND m.planned_busy
      AND m.start_ns < now_ns
  ),
  states AS (
    SELECT i.work_center_id,
           CASE WHEN i.category IN ('fault', 'idle')
                 AND coalesce(i.episode_ns, coalesce(i.end_ns, now_ns) - i.start_ns) < micro_ns
                THEN 'micro' ELSE i.category END AS bucket,
           least(coalesce(i.end_ns, least(now_ns, we)), we) - greatest(i.start_ns, ws) AS clipped_ns
    FROM intervals i
  ),
  state_sums AS (  -- per bucket: max(0, sum) as in oee_query.state_sums
    SELECT work_center_id,
           greatest(0, coalesce(sum(clipped_ns) FILTER (WHERE bucket = 'production'), 0)) / 1e9 AS production_s,
           greatest(0, coalesce(sum(clipped_ns) FILTER (WHERE bucket = 'micro'), 0)) / 1e9 AS micro_s,
           greatest(0, coalesce(sum(clipped_ns) FILTER (WHERE bucket = 'setup'), 0)) / 1e9 AS setup_s,
           greatest(0, coalesce(sum(clipped_ns) FILTER (WHERE bucket = 'fault'), 0)) / 1e9 AS fault_s,
           greatest(0, coalesce(sum(clipped_ns) FILTER (WHERE bucket = 'idle'), 0)) / 1e9 AS idle_s,
           greatest(0, coalesce(sum(clipped_ns) FILTER (WHERE bucket = 'planned_down'), 0)) / 1e9 AS planned_down_s
    FROM states GROUP BY work_center_id
  ),
  counts AS (
    SELECT c.work_center_id,
           sum(c.produced_qty) AS produced,
           sum(c.reject_qty) AS reject,
           sum(CASE WHEN sr.category = 'startup' THEN c.reject_qty ELSE 0 END) AS startup,
           sum(c.produced_qty * coalesce(c.ideal_cycle_time_s, 0)) AS ideal
    FROM production_counts c
    LEFT JOIN scrap_reasons sr ON sr.id = c.scrap_reason_id
    WHERE c.work_center_id IN (SELECT id FROM wcs) AND c.planned_busy AND c.ts_ns >= ws AND c.ts_ns < we
    GROUP BY c.work_center_id
  )
  SELECT wcs.id, wcs.site::text, wcs.area::text, wcs.line::text, wcs.machine::text,
         concat_ws('/', wcs.site, wcs.area, wcs.line, wcs.machine),
         (cal.planned_operation_ns / 1e9)::double precision,
         (cal.planned_down_ns / 1e9 + coalesce(ss.planned_down_s, 0))::double precision,
         coalesce(ss.production_s, 0)::double precision, coalesce(ss.micro_s, 0)::double precision,
         coalesce(ss.setup_s, 0)::double precision, coalesce(ss.fault_s, 0)::double precision,
         coalesce(ss.idle_s, 0)::double precision,
         coalesce(cn.produced, 0), coalesce(cn.reject, 0), coalesce(cn.startup, 0), coalesce(cn.ideal, 0)
  FROM wcs
  CROSS JOIN LATERAL edgefab_calendar_ns(wcs.site_id, wcs.id, ws, we, default_tz) cal
  LEFT JOIN state_sums ss ON ss.work_center_id = wcs.id
  LEFT JOIN counts cn ON cn.work_center_id = wcs.id
  ORDER BY wcs.site, wcs.area, wcs.line, wcs.machine
$$;

CREATE OR REPLACE FUNCTION edgefab_oee_inputs(
  window_from timestamptz,
  window_to timestamptz,
  micro_stop_threshold_s double precision DEFAULT 120,
  at_time timestamptz DEFAULT now(),
  default_tz text DEFAULT 'UTC'
) RETURNS TABLE (
@INPUT_COLUMNS@
)
LANGUAGE sql STABLE AS $$
  SELECT * FROM edgefab_oee_inputs_ns(
    edgefab_ns(window_from),
    least(edgefab_ns(window_to), greatest(edgefab_ns(at_time), edgefab_ns(window_from))),
    edgefab_ns(at_time),
    (micro_stop_threshold_s * 1e9)::bigint,
    default_tz)
$$;

-- OEE per machine, line, area or site: inputs summed, KPIs computed once (see mes_lite.oee.compute)
CREATE OR REPLACE FUNCTION edgefab_oee(
  window_from timestamptz,
  window_to timestamptz,
  group_by text DEFAULT 'machine',
  micro_stop_threshold_s double precision DEFAULT 120,
  at_time timestamptz DEFAULT now(),
  default_tz text DEFAULT 'UTC'
) RETURNS TABLE (
  site text, area text, line text, machine text, path text,
  planned_busy_s double precision, actual_production_s double precision,
  setup_s double precision, fault_s double precision, idle_s double precision, micro_stop_s double precision,
  produced_qty double precision, good_qty double precision, reject_qty double precision,
  ideal_production_s double precision,
  availability double precision, effectiveness double precision, quality_ratio double precision,
  oee double precision, effectiveness_over_100 boolean
)
LANGUAGE sql STABLE AS $$
  WITH grouped AS (
    SELECT i.site,
           CASE WHEN group_by IN ('area', 'line', 'machine') THEN i.area END AS area,
           CASE WHEN group_by IN ('line', 'machine') THEN i.line END AS line,
           CASE WHEN group_by = 'machine' THEN i.machine END AS machine,
           greatest(0, sum(i.planned_operation_s) - sum(i.planned_down_s)) AS pbt,
           sum(i.production_s) + sum(i.micro_stop_s) AS apt,
           sum(i.setup_s) AS setup_s, sum(i.fault_s) AS fault_s, sum(i.idle_s) AS idle_s,
           sum(i.micro_stop_s) AS micro_s,
           sum(i.produced_qty) AS produced, sum(i.reject_qty) AS reject, sum(i.ideal_production_s) AS ideal
    FROM edgefab_oee_inputs(window_from, window_to, micro_stop_threshold_s, at_time, default_tz) i
    WHERE group_by IN ('machine', 'line', 'area', 'site')
    GROUP BY 1, 2, 3, 4
  ),
  ratios AS (
    SELECT g.*,
           g.apt / nullif(g.pbt, 0) AS a,
           g.ideal / nullif(g.apt, 0) AS e,
           (g.produced - g.reject) / nullif(g.produced, 0) AS q
    FROM grouped g
  )
  SELECT r.site, r.area, r.line, r.machine, concat_ws('/', r.site, r.area, r.line, r.machine),
         r.pbt, r.apt, r.setup_s, r.fault_s, r.idle_s, r.micro_s,
         r.produced, r.produced - r.reject, r.reject, r.ideal,
         r.a, r.e, r.q, r.a * r.e * r.q, coalesce(r.e > 1.0 + 1e-9, false)
  FROM ratios r
  ORDER BY r.site, r.area, r.line, r.machine
$$;

-- the plant hierarchy, for Grafana variables (site / line / machine)
CREATE OR REPLACE VIEW edgefab_work_centers AS
  SELECT wc.id AS work_center_id, s.enterprise, s.code AS site, a.code AS area, l.code AS line,
         wc.code AS machine, wc.name, wc.active
  FROM work_centers wc JOIN lines l ON l.id = wc.line_id JOIN areas a ON a.id = l.area_id
  JOIN sites s ON s.id = a.site_id;

CREATE OR REPLACE VIEW edgefab_state_intervals AS
  SELECT w.site, w.area, w.line, w.machine, m.work_center_id, m.state, m.category,
         m.start_ns, m.end_ns,
         to_timestamp(m.start_ns / 1e9) AS start_time,
         to_timestamp(m.end_ns / 1e9) AS end_time,
         dr.code AS reason, m.planned_busy
  FROM machine_state_intervals m
  JOIN edgefab_work_centers w ON w.work_center_id = m.work_center_id
  LEFT JOIN downtime_reasons dr ON dr.id = m.reason_id;

-- the current (latest) state of every active machine; an open interval has no end_time
CREATE OR REPLACE VIEW edgefab_machine_state_now AS
  SELECT DISTINCT ON (w.work_center_id)
         w.site, w.area, w.line, w.machine, w.name, m.state, m.category, dr.code AS reason,
         to_timestamp(m.start_ns / 1e9) AS since,
         (coalesce(m.end_ns, edgefab_ns(now())) - m.start_ns) / 1e9 AS duration_s,
         m.end_ns IS NULL AS open
  FROM edgefab_work_centers w
  JOIN machine_state_intervals m ON m.work_center_id = w.work_center_id
  LEFT JOIN downtime_reasons dr ON dr.id = m.reason_id
  WHERE w.active
  ORDER BY w.work_center_id, m.start_ns DESC;

CREATE OR REPLACE VIEW edgefab_production_counts AS
  SELECT w.site, w.area, w.line, w.machine, c.ts_ns, to_timestamp(c.ts_ns / 1e9) AS time,
         c.produced_qty, c.reject_qty, c.produced_qty - c.reject_qty AS good_qty,
         wo.number AS work_order, sr.code AS scrap_reason, c.planned_busy, c.source
  FROM production_counts c
  JOIN edgefab_work_centers w ON w.work_center_id = c.work_center_id
  LEFT JOIN work_orders wo ON wo.id = c.work_order_id
  LEFT JOIN scrap_reasons sr ON sr.id = c.scrap_reason_id;

-- rejects by reason: operator scrap reports carry a reason, machine reject counters do not
CREATE OR REPLACE VIEW edgefab_scrap AS
  SELECT site, area, line, machine, ts_ns, time, work_order,
         coalesce(scrap_reason, 'machine reject counter') AS reason, reject_qty
  FROM edgefab_production_counts
  WHERE reject_qty <> 0;

-- quantities as in work_orders.quantities: good = produced - rejects of the order's counts
CREATE OR REPLACE VIEW edgefab_work_order_progress AS
  SELECT wo.number AS work_order, p.code AS product, w.site, w.area, w.line, w.machine, wo.status,
         wo.planned_qty,
         coalesce(q.produced, 0) AS produced_qty, coalesce(q.reject, 0) AS reject_qty,
         coalesce(q.produced, 0) - coalesce(q.reject, 0) AS good_qty,
         greatest(0, wo.planned_qty - (coalesce(q.produced, 0) - coalesce(q.reject, 0))) AS remaining_qty,
         CASE WHEN wo.planned_qty > 0
              THEN (coalesce(q.produced, 0) - coalesce(q.reject, 0)) / wo.planned_qty ELSE 0 END AS progress,
         to_timestamp(wo.planned_start_ns / 1e9) AS planned_start, to_timestamp(wo.planned_end_ns / 1e9) AS planned_end,
         to_timestamp(wo.started_ns / 1e9) AS started, to_timestamp(wo.completed_ns / 1e9) AS completed
  FROM work_orders wo
  JOIN products p ON p.id = wo.product_id
  JOIN edgefab_work_centers w ON w.work_center_id = wo.work_center_id
  LEFT JOIN (SELECT work_order_id, sum(produced_qty) AS produced, sum(reject_qty) AS reject
             FROM production_counts WHERE work_order_id IS NOT NULL GROUP BY work_order_id) q
         ON q.work_order_id = wo.id;

-- on hand per material, location and lot (the cached balances; a test reconciles them with the ledger)
CREATE OR REPLACE VIEW edgefab_stock_on_hand AS
  SELECT p.code AS material, p.name AS material_name, p.unit_of_measure AS unit,
         loc.code AS location, lot.code AS lot, lot.expiry_date, b.quantity::double precision AS quantity
  FROM stock_balances b
  JOIN products p ON p.id = b.product_id
  JOIN locations loc ON loc.id = b.location_id
  JOIN lots lot ON lot.id = b.lot_id
  WHERE b.quantity <> 0;

-- reorder points at or below their minimum (see inventory.planning.low_stock): a location's whole subtree
CREATE OR REPLACE VIEW edgefab_stock_low AS
  WITH RECURSIVE subtree(root_id, location_id) AS (
    SELECT id, id FROM locations
    UNION ALL
    SELECT t.root_id, c.id FROM subtree t JOIN locations c ON c.parent_id = t.location_id
  ),
  levels AS (
    SELECT rp.id, p.code AS material, p.unit_of_measure AS unit, loc.code AS location,
           rp.min_quantity::double precision AS min_quantity,
           rp.reorder_quantity::double precision AS reorder_quantity,
           coalesce((SELECT sum(b.quantity) FROM stock_balances b
                     WHERE b.product_id = rp.product_id
                       AND (rp.location_id IS NULL
                            OR b.location_id IN (SELECT location_id FROM subtree WHERE root_id = rp.location_id))),
                    0)::double precision AS on_hand
    FROM reorder_points rp
    JOIN products p ON p.id = rp.product_id
    LEFT JOIN locations loc ON loc.id = rp.location_id
  )
  SELECT material, location, on_hand, min_quantity, reorder_quantity, unit
  FROM levels WHERE on_hand <= min_quantity;
"""


INPUT_COLUMNS = """\
  work_center_id integer, site text, area text, line text, machine text, path text,
  planned_operation_s double precision, planned_down_s double precision,
  production_s double precision, micro_stop_s double precision, setup_s double precision,
  fault_s double precision, idle_s double precision,
  produced_qty double precision, reject_qty double precision, startup_reject_qty double precision,
  ideal_production_s double precision"""
CREATE_SQL = CREATE_SQL.replace("@INPUT_COLUMNS@", INPUT_COLUMNS)


def drop_sql() -> str:
    """Statements that remove every object of `CREATE_SQL` (views first: they may use the functions)."""
    views = "".join(f"DROP VIEW IF EXISTS {name};\n" for name in VIEWS)
    functions = "".join(f"DROP FUNCTION IF EXISTS {sig};\n" for sig in OBJECTS)
    return views + functions

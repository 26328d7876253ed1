-- The benchmark's reference: the pipeline's work done in pure DuckDB SQL, in one pass.
-- Run by `grid bench` (grid_bench/throughput.py) with the landing files in the variable
-- `files`. It produces what `grid run` produces: Bronze events (first wins, one per
-- event_id), rejected lines with their reason (envelope rules, conflicts, undecodable
-- lines), Silver current state latest-wins with quarantine and a ledger row per event, and
-- the four Gold tables. It does not keep payloads verbatim (DuckDB re-serialises JSON) and
-- reads money through DuckDB's JSON numbers.
SET TimeZone = 'UTC';

-- Bronze ------------------------------------------------------------------------------------
CREATE TEMP TABLE lines AS
SELECT filename AS source_file,
       row_number() OVER (PARTITION BY filename) AS line_number,
       line
FROM read_csv(getvariable('files'), columns = {'line': 'VARCHAR'}, header = false,
              delim = E'\x1f', quote = '', escape = '', filename = true, auto_detect = false,
              ignore_errors = true, store_rejects = true);

-- Each line is parsed once: the five members come out in one json_extract.
CREATE TEMP TABLE envelopes AS
SELECT source_file, line_number, line, j, m[1] AS id_j, m[2] AS type_j, m[3] AS at_j,
       m[4] AS source_j, m[5] AS payload_j,
       CASE
         WHEN j IS NULL THEN 'invalid_json'
         WHEN json_type(j) <> 'OBJECT' THEN 'not_a_json_object'
         ELSE concat_ws('; ',
           CASE WHEN m[1] IS NULL THEN 'missing_event_id'
                WHEN json_type(m[1]) <> 'VARCHAR' OR trim(m[1]->>'$') = ''
                  THEN 'invalid_event_id' END,
           CASE WHEN m[2] IS NULL THEN 'missing_event_type'
                WHEN json_type(m[2]) <> 'VARCHAR' OR trim(m[2]->>'$') = ''
                  THEN 'invalid_event_type' END,
           CASE WHEN m[3] IS NULL THEN 'missing_occurred_at'
                WHEN TRY_CAST(m[3]->>'$' AS TIMESTAMPTZ) IS NULL THEN 'invalid_occurred_at'
                WHEN NOT regexp_matches(m[3]->>'$', '(Z|z|[+-]\d\d(:?\d\d)?)$')
                  THEN 'occurred_at_without_offset' END,
           CASE WHEN m[4] IS NOT NULL AND json_type(m[4]) NOT IN ('VARCHAR', 'NULL')
                  THEN 'invalid_source' END,
           CASE WHEN m[5] IS NULL THEN 'missing_payload'
                WHEN json_type(m[5]) <> 'OBJECT' THEN 'invalid_payload' END)
       END AS reason
FROM (SELECT *, CASE WHEN json_type(j) = 'OBJECT' THEN json_extract(j, ['$.event_id',
               '$.event_type', '$.occurred_at', '$.source', '$.payload']) END AS m
      FROM (SELECT *, CASE WHEN json_valid(line) THEN CAST(line AS JSON) END AS j
            FROM lines WHERE trim(line) <> ''));

CREATE TABLE events AS
SELECT id_j->>'$' AS event_id, row_number() OVER (ORDER BY source_file, line_number) AS ingest_seq,
       type_j->>'$' AS event_type, CAST(at_j->>'$' AS TIMESTAMPTZ) AS occurred_at,
       coalesce(source_j->>'$', 'unknown') AS source, CAST(payload_j AS VARCHAR) AS payload,
       sha256(json(j)) AS content_hash, source_file, line_number
FROM envelopes WHERE reason = ''
QUALIFY row_number() OVER (PARTITION BY id_j->>'$' ORDER BY source_file, line_number) = 1;
-- No PRIMARY KEY, like bronze.events on DuckDB: the QUALIFY above is the dedup.

CREATE TABLE rejected_events AS
SELECT source_file, line_number, line AS raw_line, reason, NULL::VARCHAR AS event_id
FROM envelopes WHERE reason <> ''
UNION ALL
SELECT e.source_file, e.line_number, e.line, 'event_id_conflict', s.event_id
FROM envelopes e JOIN events s ON s.event_id = e.id_j->>'$'
WHERE e.reason = '' AND (e.source_file, e.line_number) <> (s.source_file, s.line_number)
  AND sha256(json(e.j)) <> s.content_hash
UNION ALL
SELECT f.file_path, r.line, r.csv_line, 'invalid_utf8: ' || r.error_message, NULL
FROM reject_errors r JOIN reject_scans f USING (scan_id, file_id);

-- Silver ------------------------------------------------------------------------------------
CREATE TEMP TABLE domain AS
SELECT event_id, ingest_seq, event_type, occurred_at, CAST(payload AS JSON) AS p
FROM events
WHERE event_type IN ('product.created', 'product.updated',
                     'order.placed', 'order.paid', 'order.shipped', 'order.cancelled');

CREATE TEMP TABLE product_candidates AS
SELECT event_id, occurred_at, (p->>'product_id') AS product_id, (p->>'name') AS name,
       (p->>'category') AS category, TRY_CAST(p->>'unit_price' AS DECIMAL(18, 6)) AS unit_price,
       coalesce(p->>'currency', 'USD') AS currency,
       coalesce(TRY_CAST(p->>'active' AS BOOLEAN), true) AS active,
       concat_ws('; ',
         CASE WHEN coalesce(trim(p->>'product_id'), '') = '' THEN 'product_id' END,
         CASE WHEN coalesce(trim(p->>'category'), '') = '' THEN 'category' END,
         CASE WHEN coalesce(TRY_CAST(p->>'unit_price' AS DECIMAL(18, 6)) >= 0, false) = false
           THEN 'unit_price' END,
         CASE WHEN NOT regexp_matches(coalesce(p->>'currency', 'USD'), '^[A-Za-z]{3}$')
           THEN 'currency' END) AS reasons
FROM domain WHERE event_type LIKE 'product.%';

CREATE TEMP TABLE order_candidates AS
SELECT event_id, occurred_at, (p->>'order_id') AS order_id, split_part(event_type, '.', 2) AS status,
       CASE WHEN event_type = 'order.placed' THEN (p->>'customer_id') END AS customer_id,
       CASE WHEN event_type = 'order.placed' THEN coalesce(p->>'currency', 'USD') END AS currency,
       concat_ws('; ',
         CASE WHEN coalesce(trim(p->>'order_id'), '') = '' THEN 'order_id' END,
         CASE WHEN event_type = 'order.placed'
                   AND coalesce(json_array_length(p->'items'), 0) = 0 THEN 'items' END) AS reasons
FROM domain WHERE event_type LIKE 'order.%';

CREATE TEMP TABLE item_candidates AS
SELECT event_id, order_id, occurred_at, line_number, (item->>'product_id') AS product_id,
       TRY_CAST(item->>'quantity' AS INTEGER) AS quantity,
       TRY_CAST(item->>'unit_price' AS DECIMAL(18, 6)) AS unit_price,
       coalesce(TRY_CAST(item->>'discount' AS DECIMAL(18, 6)), 0) AS discount,
       concat_ws('; ',
         CASE WHEN coalesce(trim(item->>'product_id'), '') = '' THEN 'product_id' END,
         CASE WHEN json_type(item->'quantity') NOT IN ('BIGINT', 'UBIGINT')
                   OR TRY_CAST(item->>'quantity' AS INTEGER) IS NULL
                   OR TRY_CAST(item->>'quantity' AS INTEGER) <= 0 THEN 'quantity' END,
         CASE WHEN coalesce(TRY_CAST(item->>'unit_price' AS DECIMAL(18, 6)) >= 0, false) = false
           THEN 'unit_price' END,
         CASE WHEN NOT coalesce(TRY_CAST(item->>'discount' AS DECIMAL(18, 6)), 0) BETWEEN 0 AND 0.999999
           THEN 'discount' END) AS reasons
FROM (SELECT event_id, (p->>'order_id') AS order_id, occurred_at,
             unnest(range(1, CAST(json_array_length(p->'items') AS BIGINT) + 1)) AS line_number,
             unnest(CAST(p->'items' AS JSON[])) AS item
      FROM domain WHERE event_type = 'order.placed');

CREATE TABLE quarantine AS
SELECT event_id, list(reason ORDER BY reason) AS reasons
FROM (SELECT event_id, reasons AS reason FROM product_candidates WHERE reasons <> ''
      UNION ALL SELECT event_id, reasons FROM order_candidates WHERE reasons <> ''
      UNION ALL SELECT event_id, 'items[' || line_number || '].' || reasons
                FROM item_candidates WHERE reasons <> '')
GROUP BY event_id;

CREATE TABLE event_ledger AS
SELECT e.event_id, e.ingest_seq, e.event_type,
       CASE WHEN e.event_type = 'system.heartbeat' THEN 'not_domain'
            WHEN d.event_id IS NULL THEN 'unknown_type'
            WHEN q.event_id IS NOT NULL THEN 'quarantined'
            ELSE 'applied' END AS outcome
FROM events e LEFT JOIN domain d USING (event_id) LEFT JOIN quarantine q USING (event_id);

CREATE TABLE products AS
SELECT product_id, name, category, unit_price, currency, active, occurred_at AS updated_at
FROM product_candidates WHERE event_id NOT IN (SELECT event_id FROM quarantine)
QUALIFY row_number() OVER (PARTITION BY product_id ORDER BY occurred_at DESC, event_id DESC) = 1;

CREATE TEMP TABLE placements AS
SELECT * FROM order_candidates
WHERE status = 'placed' AND event_id NOT IN (SELECT event_id FROM quarantine)
QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY occurred_at DESC, event_id DESC) = 1;

CREATE TABLE orders AS
SELECT s.order_id, p.customer_id, s.status, p.currency, p.occurred_at AS placed_at,
       s.occurred_at AS updated_at
FROM (SELECT * FROM order_candidates WHERE event_id NOT IN (SELECT event_id FROM quarantine)
      QUALIFY row_number() OVER (PARTITION BY order_id
                                 ORDER BY occurred_at DESC, event_id DESC) = 1) s
LEFT JOIN placements p USING (order_id);

CREATE TABLE order_items AS
SELECT i.order_id, i.line_number, i.product_id, i.quantity, i.unit_price, i.discount
FROM item_candidates i JOIN placements p USING (event_id);

-- Gold --------------------------------------------------------------------------------------
CREATE TEMP TABLE revenue_lines AS
SELECT i.order_id, i.product_id, i.quantity, coalesce(p.category, 'unknown') AS category,
       p.name AS product_name, CAST(o.placed_at AS DATE) AS order_date,
       CAST(i.unit_price AS DECIMAL(19, 6)) * CAST(1 - i.discount AS DECIMAL(7, 6))
         * CAST(i.quantity AS DECIMAL(10, 0)) AS line_revenue
FROM order_items i JOIN orders o USING (order_id) LEFT JOIN products p USING (product_id)
WHERE o.status <> 'cancelled';

CREATE TABLE revenue_by_category AS
SELECT category, round(sum(line_revenue), 2) AS revenue, count(DISTINCT order_id) AS order_count,
       sum(quantity) AS units
FROM revenue_lines GROUP BY category;

CREATE TABLE daily_revenue AS
SELECT order_date, round(sum(line_revenue), 2) AS revenue,
       count(DISTINCT order_id) AS order_count, sum(quantity) AS units,
       round(round(sum(line_revenue), 2) / count(DISTINCT order_id), 2) AS average_order_value
FROM revenue_lines GROUP BY order_date;

CREATE TABLE order_status_counts AS
SELECT status, count(*) AS order_count FROM orders GROUP BY status;

CREATE TABLE product_revenue AS
SELECT product_id, any_value(product_name) AS product_name, any_value(category) AS category,
       round(sum(line_revenue), 2) AS revenue, sum(quantity) AS units,
       count(DISTINCT order_id) AS order_count,
       rank() OVER (ORDER BY round(sum(line_revenue), 2) DESC) AS revenue_rank
FROM revenue_lines GROUP BY product_id;

-- The benchmark's earlier, lighter reference ("core"): envelope checks, first-wins dedup,
-- latest-wins Silver state and two Gold tables in pure DuckDB SQL. It keeps nothing of bad
-- input (no rejected lines, quarantine or ledger), declares no keys, and builds two of the
-- four Gold tables. Kept to show the cost of that extra work; reference.sql does the
-- pipeline's whole job.
SET TimeZone = 'UTC';

CREATE TABLE raw AS SELECT filename, row_number() OVER () AS pos, json FROM read_json_objects(getvariable('files'), format='newline_delimited', ignore_errors=true, filename=true);

CREATE TABLE events AS SELECT * FROM (
  SELECT json->>'event_id' AS event_id, json->>'event_type' AS event_type,
         TRY_CAST(json->>'occurred_at' AS TIMESTAMPTZ) AS occurred_at,
         json->'payload' AS payload, md5(json::VARCHAR) AS content_hash, filename, pos
  FROM raw
  WHERE json_type(json) = 'OBJECT' AND coalesce(json->>'event_id', '') <> ''
    AND json->>'event_type' IS NOT NULL AND json_type(json->'payload') = 'OBJECT'
    AND regexp_matches(json->>'occurred_at', '(Z|[+-]\d\d:\d\d)$'))
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY filename, pos) = 1;

CREATE TABLE products AS
SELECT payload->>'product_id' AS product_id, payload->>'category' AS category,
       TRY_CAST(payload->>'unit_price' AS DECIMAL(18,6)) AS unit_price, occurred_at, event_id
FROM events WHERE event_type IN ('product.created', 'product.updated')
  AND payload->>'product_id' IS NOT NULL AND payload->>'category' IS NOT NULL
  AND TRY_CAST(payload->>'unit_price' AS DECIMAL(18,6)) >= 0
QUALIFY row_number() OVER (PARTITION BY product_id ORDER BY occurred_at DESC, event_id DESC) = 1;

CREATE TABLE orders AS
SELECT payload->>'order_id' AS order_id, split_part(event_type, '.', 2) AS status, occurred_at
FROM events WHERE event_type IN ('order.placed', 'order.paid', 'order.shipped', 'order.cancelled')
  AND payload->>'order_id' IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY occurred_at DESC, event_id DESC) = 1;

CREATE TABLE order_items AS
WITH placements AS (
  SELECT payload->>'order_id' AS order_id, occurred_at,
         from_json(payload->'items', '[{"product_id":"VARCHAR","quantity":"INTEGER","unit_price":"DECIMAL(18,6)","discount":"DECIMAL(18,6)"}]') AS items
  FROM events WHERE event_type = 'order.placed' AND payload->>'order_id' IS NOT NULL
    AND json_array_length(payload->'items') > 0
  QUALIFY row_number() OVER (PARTITION BY payload->>'order_id'
                             ORDER BY occurred_at DESC, event_id DESC) = 1)
SELECT order_id, occurred_at AS placed_at, unnest(items, recursive := true) FROM placements;

CREATE TABLE revenue_by_category AS
SELECT coalesce(p.category, 'unknown') AS category,
       round(sum(i.quantity * i.unit_price * (1 - coalesce(i.discount, 0))), 2) AS revenue,
       count(DISTINCT i.order_id) AS order_count, sum(i.quantity) AS units
FROM order_items i JOIN orders o USING (order_id) LEFT JOIN products p USING (product_id)
WHERE o.status <> 'cancelled' GROUP BY 1;

CREATE TABLE daily_revenue AS
SELECT CAST(i.placed_at AS DATE) AS order_date,
       round(sum(i.quantity * i.unit_price * (1 - coalesce(i.discount, 0))), 2) AS revenue,
       count(DISTINCT i.order_id) AS order_count
FROM order_items i JOIN orders o USING (order_id)
WHERE o.status <> 'cancelled' GROUP BY 1;

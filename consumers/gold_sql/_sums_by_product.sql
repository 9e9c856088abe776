-- Gold's partial sums, not a KPI table (a file whose name starts with "_" is not one):
-- per product, category and brand of Silver's events, the counts and sums that the
-- product and category tables add up. Those tables read them as the relation
-- gold_sums: computing Gold whole, each engine registers this query over
-- silver_events under that name; updating it, the sums stored under gold/ (updated
-- from the files a run added to and removed from Silver) are registered instead.
-- Revenue is summed to DECIMAL(38, 2), so that sums of sums cannot overflow; the
-- tables cast it to their DECIMAL(18, 2).
SELECT
    product_id,
    category,
    brand,
    CAST(COUNT(*) AS BIGINT) AS events,
    CAST(SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS BIGINT) AS views,
    CAST(SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS BIGINT) AS carts,
    CAST(SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS BIGINT) AS purchases,
    CAST(SUM(CASE WHEN event_type = 'purchase' THEN quantity ELSE 0 END) AS BIGINT) AS units,
    CAST(
        SUM(CASE WHEN event_type = 'purchase' THEN revenue ELSE CAST(0 AS DECIMAL(12, 2)) END)
        AS DECIMAL(38, 2)
    ) AS revenue
FROM silver_events
GROUP BY product_id, category, brand

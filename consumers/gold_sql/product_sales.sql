-- Units and revenue per product, best sellers first (top products are its head).
SELECT
    product_id,
    category,
    CAST(SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS BIGINT) AS views,
    CAST(SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS BIGINT) AS purchases,
    CAST(SUM(CASE WHEN event_type = 'purchase' THEN quantity ELSE 0 END) AS BIGINT) AS units,
    CAST(SUM(CASE WHEN event_type = 'purchase' THEN revenue ELSE CAST(0 AS DECIMAL(12, 2)) END) AS DECIMAL(18, 2)) AS revenue
FROM silver_events
GROUP BY product_id, category
ORDER BY revenue DESC, product_id

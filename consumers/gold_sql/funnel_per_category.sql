-- Funnel conversion, units and revenue per product category.
SELECT
    category,
    events,
    views,
    carts,
    purchases,
    units,
    revenue,
    ROUND(CAST(carts AS DOUBLE) / CAST(NULLIF(views, 0) AS DOUBLE), 6) AS view_to_cart,
    ROUND(CAST(purchases AS DOUBLE) / CAST(NULLIF(carts, 0) AS DOUBLE), 6) AS cart_to_purchase
FROM (
    SELECT
        category,
        CAST(COUNT(*) AS BIGINT) AS events,
        CAST(SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS BIGINT) AS views,
        CAST(SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS BIGINT) AS carts,
        CAST(SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS BIGINT) AS purchases,
        CAST(SUM(CASE WHEN event_type = 'purchase' THEN quantity ELSE 0 END) AS BIGINT) AS units,
        CAST(SUM(CASE WHEN event_type = 'purchase' THEN revenue ELSE CAST(0 AS DECIMAL(12, 2)) END) AS DECIMAL(18, 2))
            AS revenue
    FROM silver_events
    GROUP BY category
) AS per_category
ORDER BY category

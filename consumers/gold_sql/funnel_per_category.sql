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
        COUNT(*) AS events,
        SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS views,
        SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS carts,
        SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
        SUM(CASE WHEN event_type = 'purchase' THEN quantity ELSE 0 END) AS units,
        SUM(CASE WHEN event_type = 'purchase' THEN revenue ELSE CAST(0 AS DECIMAL(12, 2)) END)
            AS revenue
    FROM silver_events
    GROUP BY category
) AS per_category
ORDER BY category

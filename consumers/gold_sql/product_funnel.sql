-- The funnel of each product: views, carts, purchases, units, revenue and conversion.
SELECT
    product_id,
    category,
    views,
    carts,
    purchases,
    units,
    revenue,
    ROUND(CAST(carts AS DOUBLE) / CAST(NULLIF(views, 0) AS DOUBLE), 6) AS view_to_cart,
    ROUND(CAST(purchases AS DOUBLE) / CAST(NULLIF(carts, 0) AS DOUBLE), 6) AS cart_to_purchase
FROM (
    SELECT
        product_id,
        category,
        CAST(SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS BIGINT) AS views,
        CAST(SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS BIGINT) AS carts,
        CAST(SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS BIGINT) AS purchases,
        CAST(SUM(CASE WHEN event_type = 'purchase' THEN quantity ELSE 0 END) AS BIGINT) AS units,
        CAST(
            SUM(CASE WHEN event_type = 'purchase' THEN revenue ELSE CAST(0 AS DECIMAL(12, 2)) END)
            AS DECIMAL(18, 2)
        ) AS revenue
    FROM silver_events
    GROUP BY product_id, category
) AS per_product
ORDER BY product_id

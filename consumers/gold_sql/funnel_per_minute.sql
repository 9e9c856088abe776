-- Funnel conversion view -> cart -> purchase, per minute of event time.
SELECT
    minute,
    views,
    carts,
    purchases,
    ROUND(CAST(carts AS DOUBLE) / CAST(NULLIF(views, 0) AS DOUBLE), 6) AS view_to_cart,
    ROUND(CAST(purchases AS DOUBLE) / CAST(NULLIF(carts, 0) AS DOUBLE), 6) AS cart_to_purchase
FROM (
    SELECT
        date_trunc('minute', event_time) AS minute,
        CAST(SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS BIGINT) AS views,
        CAST(SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS BIGINT) AS carts,
        CAST(SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS BIGINT) AS purchases
    FROM silver_events
    GROUP BY date_trunc('minute', event_time)
) AS per_minute
ORDER BY minute

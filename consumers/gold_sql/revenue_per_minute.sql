-- Revenue, units and events per minute of event time.
SELECT
    date_trunc('minute', event_time) AS minute,
    CAST(COUNT(*) AS BIGINT) AS events,
    CAST(SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS BIGINT) AS views,
    CAST(SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS BIGINT) AS carts,
    CAST(SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS BIGINT) AS purchases,
    CAST(SUM(CASE WHEN event_type = 'purchase' THEN quantity ELSE 0 END) AS BIGINT) AS units,
    CAST(SUM(CASE WHEN event_type = 'purchase' THEN revenue ELSE CAST(0 AS DECIMAL(12, 2)) END) AS DECIMAL(18, 2)) AS revenue
FROM silver_events
GROUP BY date_trunc('minute', event_time)
ORDER BY minute

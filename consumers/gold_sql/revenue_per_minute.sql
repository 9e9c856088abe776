-- Revenue, units and events per minute of event time.
SELECT
    date_trunc('minute', event_time) AS minute,
    COUNT(*) AS events,
    SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS views,
    SUM(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS carts,
    SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
    SUM(CASE WHEN event_type = 'purchase' THEN quantity ELSE 0 END) AS units,
    SUM(CASE WHEN event_type = 'purchase' THEN revenue ELSE CAST(0 AS DECIMAL(12, 2)) END) AS revenue
FROM silver_events
GROUP BY date_trunc('minute', event_time)
ORDER BY minute

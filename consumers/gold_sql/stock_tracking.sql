-- Since when the stream carries stock levels (null when it never did).
SELECT
    MIN(event_time) AS tracked_since,
    CAST(COUNT(stock_remaining) AS BIGINT) AS events_with_stock
FROM silver_events
WHERE stock_remaining IS NOT NULL

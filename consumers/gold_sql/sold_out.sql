-- Sold-out moments: the purchase that took a product's last unit (stock_remaining = 0).
-- Only data written with stock tracking (schema v3 and later) carries the stock level.
SELECT
    product_id,
    category,
    MIN(event_time) AS sold_out_at
FROM silver_events
WHERE event_type = 'purchase' AND stock_remaining = 0
GROUP BY product_id, category
ORDER BY sold_out_at, product_id

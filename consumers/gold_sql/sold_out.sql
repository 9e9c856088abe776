-- Sold-out moments: the purchase that took a product's last unit (stock_remaining = 0).
-- Only data written with stock tracking (schema v3 and later) carries the stock level.
-- The category is the catalog's (silver_products) where it lists the product.
SELECT
    s.product_id,
    COALESCE(p.category, s.category) AS category,
    s.sold_out_at
FROM (
    SELECT product_id, category, MIN(event_time) AS sold_out_at
    FROM silver_events
    WHERE event_type = 'purchase' AND stock_remaining = 0
    GROUP BY product_id, category
) AS s
LEFT JOIN silver_products AS p ON p.product_id = s.product_id
ORDER BY s.sold_out_at, s.product_id

-- Sold-out moments: a product that people keep viewing, and nobody can cart any more
-- after its last purchase, sold out at that last purchase. "Keep viewing" means at
-- least 20 views after the last purchase with no cart or purchase in between.
SELECT
    product_id,
    category,
    last_purchase AS sold_out_at,
    views_after
FROM (
    SELECT
        p.product_id,
        p.category,
        p.last_purchase,
        SUM(CASE WHEN e.event_type = 'view' AND e.event_time > p.last_purchase THEN 1 ELSE 0 END)
            AS views_after,
        SUM(CASE WHEN e.event_type = 'cart' AND e.event_time > p.last_purchase THEN 1 ELSE 0 END)
            AS carts_after
    FROM (
        SELECT product_id, category, MAX(event_time) AS last_purchase
        FROM silver_events
        WHERE event_type = 'purchase'
        GROUP BY product_id, category
    ) AS p
    JOIN silver_events AS e ON e.product_id = p.product_id
    GROUP BY p.product_id, p.category, p.last_purchase
) AS after_last
WHERE carts_after = 0 AND views_after >= 20
ORDER BY sold_out_at, product_id

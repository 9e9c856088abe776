-- Time from the sale's start to each sell-out, in seconds. A sale starts at its first
-- event (the first that carries its sale id); a sell-out outside any sale has none.
SELECT
    s.product_id,
    s.category,
    s.sale_id,
    s.sold_out_at,
    sale.sale_started_at,
    ROUND(
        CAST(
            EXTRACT(EPOCH FROM s.sold_out_at) - EXTRACT(EPOCH FROM sale.sale_started_at)
            AS DOUBLE
        ),
        3
    ) AS seconds_into_sale
FROM (
    SELECT product_id, category, sale_id, MIN(event_time) AS sold_out_at
    FROM silver_events
    WHERE event_type = 'purchase' AND stock_remaining = 0
    GROUP BY product_id, category, sale_id
) AS s
LEFT JOIN (
    SELECT sale_id, MIN(event_time) AS sale_started_at
    FROM silver_events
    WHERE sale_id IS NOT NULL
    GROUP BY sale_id
) AS sale
    ON s.sale_id = sale.sale_id
ORDER BY s.sold_out_at, s.product_id

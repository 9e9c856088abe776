-- Units and revenue per product, best sellers first (top products are its head).
-- Category and brand are the catalog's (silver_products); a product the catalog does
-- not list keeps the event's.
SELECT
    s.product_id,
    COALESCE(p.category, s.category) AS category,
    COALESCE(p.brand, s.brand) AS brand,
    s.views,
    s.purchases,
    s.units,
    s.revenue
FROM (
    SELECT
        product_id,
        category,
        brand,
        CAST(SUM(CASE WHEN event_type = 'view' THEN 1 ELSE 0 END) AS BIGINT) AS views,
        CAST(SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS BIGINT) AS purchases,
        CAST(SUM(CASE WHEN event_type = 'purchase' THEN quantity ELSE 0 END) AS BIGINT) AS units,
        CAST(
            SUM(CASE WHEN event_type = 'purchase' THEN revenue ELSE CAST(0 AS DECIMAL(12, 2)) END)
            AS DECIMAL(18, 2)
        ) AS revenue
    FROM silver_events
    GROUP BY product_id, category, brand
) AS s
LEFT JOIN silver_products AS p ON p.product_id = s.product_id
ORDER BY s.revenue DESC, s.product_id

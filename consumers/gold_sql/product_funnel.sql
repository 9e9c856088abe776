-- The funnel of each product: views, carts, purchases, units, revenue and conversion,
-- from Gold's partial sums per product, category and brand (gold_sums, see
-- _sums_by_product.sql). Category and brand are the catalog's (silver_products); a
-- product the catalog does not list keeps the event's.
SELECT
    s.product_id,
    COALESCE(p.category, s.category) AS category,
    COALESCE(p.brand, s.brand) AS brand,
    s.views,
    s.carts,
    s.purchases,
    s.units,
    s.revenue,
    ROUND(CAST(s.carts AS DOUBLE) / CAST(NULLIF(s.views, 0) AS DOUBLE), 6) AS view_to_cart,
    ROUND(CAST(s.purchases AS DOUBLE) / CAST(NULLIF(s.carts, 0) AS DOUBLE), 6) AS cart_to_purchase
FROM (
    SELECT
        product_id,
        category,
        brand,
        views,
        carts,
        purchases,
        units,
        CAST(revenue AS DECIMAL(18, 2)) AS revenue
    FROM gold_sums
) AS s
LEFT JOIN silver_products AS p ON p.product_id = s.product_id
ORDER BY s.product_id

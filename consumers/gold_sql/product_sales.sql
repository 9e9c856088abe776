-- Units and revenue per product, best sellers first (top products are its head), from
-- Gold's partial sums per product, category and brand (gold_sums, see
-- _sums_by_product.sql). Category and brand are the catalog's (silver_products); a
-- product the catalog does not list keeps the event's.
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
        views,
        purchases,
        units,
        CAST(revenue AS DECIMAL(18, 2)) AS revenue
    FROM gold_sums
) AS s
LEFT JOIN silver_products AS p ON p.product_id = s.product_id
ORDER BY s.revenue DESC, s.product_id

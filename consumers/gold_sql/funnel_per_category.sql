-- Funnel conversion, units and revenue per product category, adding up Gold's partial
-- sums per product, category and brand (gold_sums, see _sums_by_product.sql).
SELECT
    category,
    events,
    views,
    carts,
    purchases,
    units,
    revenue,
    ROUND(CAST(carts AS DOUBLE) / CAST(NULLIF(views, 0) AS DOUBLE), 6) AS view_to_cart,
    ROUND(CAST(purchases AS DOUBLE) / CAST(NULLIF(carts, 0) AS DOUBLE), 6) AS cart_to_purchase
FROM (
    SELECT
        category,
        CAST(SUM(events) AS BIGINT) AS events,
        CAST(SUM(views) AS BIGINT) AS views,
        CAST(SUM(carts) AS BIGINT) AS carts,
        CAST(SUM(purchases) AS BIGINT) AS purchases,
        CAST(SUM(units) AS BIGINT) AS units,
        CAST(SUM(revenue) AS DECIMAL(18, 2)) AS revenue
    FROM gold_sums
    GROUP BY category
) AS per_category
ORDER BY category

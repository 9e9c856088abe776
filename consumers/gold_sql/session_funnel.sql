-- The share of sessions that reach a cart and a purchase (data written with sessions,
-- schema v2 and later; older data carries no session id).
SELECT
    CAST(COUNT(*) AS BIGINT) AS sessions,
    CAST(SUM(with_cart) AS BIGINT) AS sessions_with_cart,
    CAST(SUM(with_purchase) AS BIGINT) AS sessions_with_purchase,
    ROUND(CAST(SUM(with_cart) AS DOUBLE) / CAST(NULLIF(COUNT(*), 0) AS DOUBLE), 6) AS cart_share,
    ROUND(CAST(SUM(with_purchase) AS DOUBLE) / CAST(NULLIF(COUNT(*), 0) AS DOUBLE), 6)
        AS purchase_share
FROM (
    SELECT
        session_id,
        MAX(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS with_cart,
        MAX(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS with_purchase
    FROM silver_events
    WHERE session_id IS NOT NULL
    GROUP BY session_id
) AS per_session

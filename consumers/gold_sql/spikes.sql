-- Spike detection: each minute's events as a z-score against the previous ten minutes.
-- The deviation has a floor (10% of the mean, and at least 1) so that a flat series,
-- whose deviation is 0, still flags a surge instead of dividing by zero.
SELECT
    minute,
    events,
    ROUND(baseline, 3) AS baseline,
    ROUND(
        (CAST(events AS DOUBLE) - baseline)
        / GREATEST(COALESCE(deviation, 0.0), 0.1 * baseline, 1.0),
        3
    ) AS z_score,
    CAST(
        CASE
            WHEN baseline IS NOT NULL
                AND (CAST(events AS DOUBLE) - baseline)
                    / GREATEST(COALESCE(deviation, 0.0), 0.1 * baseline, 1.0) >= 3.0
            THEN 1 ELSE 0
        END AS INTEGER
    ) AS is_spike
FROM (
    SELECT
        minute,
        events,
        AVG(CAST(events AS DOUBLE)) OVER (
            ORDER BY minute ROWS BETWEEN 10 PRECEDING AND 1 PRECEDING
        ) AS baseline,
        STDDEV_POP(CAST(events AS DOUBLE)) OVER (
            ORDER BY minute ROWS BETWEEN 10 PRECEDING AND 1 PRECEDING
        ) AS deviation
    FROM (
        SELECT date_trunc('minute', event_time) AS minute, CAST(COUNT(*) AS BIGINT) AS events
        FROM silver_events
        GROUP BY date_trunc('minute', event_time)
    ) AS per_minute
) AS scored
ORDER BY minute

-- name: FindingsByDetector
-- description: Archived findings per detector and severity, with the highest score and the latest window.
-- source: flowlens
SELECT detector, severity, count(*) AS findings, max(severity_score) AS max_score,
       to_timestamp(max(window_end)) AS latest
FROM findings
GROUP BY detector, severity
ORDER BY max_score DESC, detector, severity

-- name: WafXForwardedFor
-- description: Requests per X-Forwarded-For value (the client addresses behind proxies and CDNs).
-- source: AWS Athena WAF log examples (count X-Forwarded-For IPs)
-- param: limit int = 100 : rows to show
SELECT x_forwarded_for, count(*) AS requests, count(DISTINCT client_ip) AS proxies
FROM waf
WHERE x_forwarded_for IS NOT NULL
GROUP BY x_forwarded_for
ORDER BY requests DESC, x_forwarded_for
LIMIT ${limit}

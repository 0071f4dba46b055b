-- name: WafRequestsPerIp5Min
-- description: Requests per client IP in 5-minute buckets, busiest first.
-- source: AWS Athena WAF log examples (count IPs in 5-minute intervals)
-- param: limit int = 100 : rows to show
SELECT date_bin(INTERVAL '5 minutes', "timestamp", TIMESTAMP '1970-01-01T00:00:00Z') AS bucket,
       client_ip, count(*) AS requests
FROM waf
GROUP BY 1, client_ip
ORDER BY requests DESC, bucket, client_ip
LIMIT ${limit}

-- name: WafTopRateBasedBlockedIps
-- description: The client IPs most often blocked by a rate-based rule.
-- source: AWS Athena WAF log examples (top 100 IPs blocked by RATE_BASED rules)
-- param: limit int = 100 : rows to show
SELECT client_ip, country, count(*) AS blocked
FROM waf
WHERE terminating_rule_type = 'RATE_BASED' AND action = 'BLOCK'
GROUP BY client_ip, country
ORDER BY blocked DESC, client_ip
LIMIT ${limit}

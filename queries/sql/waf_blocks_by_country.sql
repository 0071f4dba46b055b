-- name: WafBlocksByCountry
-- description: Blocked requests per country, with the distinct client IPs behind them.
-- source: AWS Athena WAF log examples (count blocks from a country)
SELECT country, count(*) AS blocked, count(DISTINCT client_ip) AS clients
FROM waf
WHERE action = 'BLOCK'
GROUP BY country
ORDER BY blocked DESC, country

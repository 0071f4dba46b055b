-- name: WafCountedRuleMatches
-- description: Rules that matched in COUNT mode (non-terminating), by requests and distinct client IPs.
-- source: AWS Athena WAF log examples (group counted rules by times matched)
SELECT r['rule_id'] AS rule_id, count(*) AS matches, count(DISTINCT client_ip) AS clients
FROM (SELECT client_ip, unnest(non_terminating_matching_rules) AS r FROM waf)
WHERE r['action'] = 'COUNT'
GROUP BY r['rule_id']
ORDER BY matches DESC, rule_id

-- name: WafExcludedRuleMatches
-- description: Managed rule-group rules excluded from blocking that requests matched, by requests and distinct client IPs.
-- source: AWS Athena WAF log examples (IPs that matched excluded rules)
SELECT rule_group, excluded_rule, count(*) AS matches, count(DISTINCT client_ip) AS clients
FROM (
  SELECT client_ip, g['rule_group_id'] AS rule_group, unnest(g['excluded_rule_ids']) AS excluded_rule
  FROM (SELECT client_ip, unnest(rule_group_list) AS g FROM waf)
)
GROUP BY rule_group, excluded_rule
ORDER BY matches DESC, rule_group, excluded_rule

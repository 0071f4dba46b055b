-- name: IPv6Traffic
-- description: Flows and bytes between IPv6 addresses, by action.
-- source: AWS VPC console Athena integration
SELECT action, count(*) AS flows, sum(packets) AS packets, sum(bytes) AS bytes
FROM flows
WHERE srcaddr LIKE '%:%' AND dstaddr LIKE '%:%'
GROUP BY action
ORDER BY action

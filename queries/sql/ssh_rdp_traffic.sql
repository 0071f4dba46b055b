-- name: SshRdpTraffic
-- description: SSH (22) and RDP (3389) flows per source, destination and action.
-- source: AWS VPC console Athena integration
-- param: limit int = 100 : rows to show
SELECT srcaddr, dstaddr, dstport, action, count(*) AS flows, sum(bytes) AS bytes
FROM flows
WHERE dstport IN (22, 3389)
GROUP BY srcaddr, dstaddr, dstport, action
ORDER BY flows DESC, srcaddr, dstaddr, dstport, action
LIMIT ${limit}

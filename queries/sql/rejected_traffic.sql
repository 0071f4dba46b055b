-- name: RejectedTraffic
-- description: Rejected flows per source address and protocol, most first.
-- source: AWS VPC console Athena integration
-- param: limit int = 100 : rows to show
SELECT srcaddr, protocol, count(*) AS flows, count(DISTINCT dstport) AS ports,
       count(DISTINCT dstaddr) AS destinations
FROM flows
WHERE action = 'REJECT'
GROUP BY srcaddr, protocol
ORDER BY flows DESC, srcaddr, protocol
LIMIT ${limit}

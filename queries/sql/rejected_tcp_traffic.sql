-- name: RejectedTCPTraffic
-- description: Rejected TCP flows per source and destination port, most first.
-- source: AWS VPC console Athena integration
-- param: limit int = 100 : rows to show
SELECT srcaddr, dstport, count(*) AS flows, count(DISTINCT dstaddr) AS destinations,
       sum(packets) AS packets
FROM flows
WHERE action = 'REJECT' AND protocol = 6
GROUP BY srcaddr, dstport
ORDER BY flows DESC, srcaddr, dstport
LIMIT ${limit}

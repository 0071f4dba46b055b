-- name: TopTCPTraffic
-- description: TCP flows from one source address per destination and port, most bytes first.
-- source: AWS VPC console Athena integration
-- param: addr ip : the source address
-- param: limit int = 50 : rows to show
SELECT dstaddr, dstport, sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows
FROM flows
WHERE protocol = 6 AND srcaddr = ${addr}
GROUP BY dstaddr, dstport
ORDER BY bytes DESC, dstaddr, dstport
LIMIT ${limit}

-- name: TopTalkersPacketLevel
-- description: The packet-level source addresses (behind NAT and load balancers) that sent the most bytes.
-- source: AWS VPC console Athena integration
-- param: limit int = 50 : rows to show
SELECT pkt_srcaddr, sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows
FROM flows
WHERE pkt_srcaddr IS NOT NULL
GROUP BY pkt_srcaddr
ORDER BY bytes DESC, pkt_srcaddr
LIMIT ${limit}

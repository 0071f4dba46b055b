-- name: TotalBytesTransferredPacketLevel
-- description: The packet-level source/destination pairs that moved the most bytes.
-- source: AWS VPC console Athena integration
-- param: limit int = 50 : rows to show
SELECT pkt_srcaddr, pkt_dstaddr, sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows
FROM flows
WHERE pkt_srcaddr IS NOT NULL AND pkt_dstaddr IS NOT NULL
GROUP BY pkt_srcaddr, pkt_dstaddr
ORDER BY bytes DESC, pkt_srcaddr, pkt_dstaddr
LIMIT ${limit}

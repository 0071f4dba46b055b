-- name: EgressByDestination
-- description: Bytes sent from private addresses to public destinations, per destination (with the AWS service when the logs name it).
-- source: flowlens
-- param: limit int = 50 : rows to show
SELECT dstaddr, pkt_dst_aws_service AS aws_service, sum(bytes) AS bytes,
       count(DISTINCT srcaddr) AS sources, count(*) AS flows
FROM flows
WHERE action = 'ACCEPT' AND is_private(srcaddr) AND is_public(dstaddr)
GROUP BY dstaddr, pkt_dst_aws_service
ORDER BY bytes DESC, dstaddr
LIMIT ${limit}

-- name: TrafficFrmSrcAddr
-- description: Flows from one source address, newest first.
-- source: AWS VPC console Athena integration
-- param: addr ip : the source address
-- param: limit int = 100 : rows to show
SELECT interface_id, srcaddr, dstaddr, srcport, dstport, protocol, packets, bytes, action,
       to_timestamp(start) AS start_time
FROM flows
WHERE srcaddr = ${addr}
ORDER BY start DESC, interface_id, dstaddr, srcport, dstport
LIMIT ${limit}

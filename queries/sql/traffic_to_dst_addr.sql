-- name: TrafficToDstAddr
-- description: Flows to one destination address, newest first.
-- source: AWS VPC console Athena integration
-- param: addr ip : the destination address
-- param: limit int = 100 : rows to show
SELECT interface_id, srcaddr, dstaddr, srcport, dstport, protocol, packets, bytes, action,
       to_timestamp(start) AS start_time
FROM flows
WHERE dstaddr = ${addr}
ORDER BY start DESC, interface_id, srcaddr, srcport, dstport
LIMIT ${limit}

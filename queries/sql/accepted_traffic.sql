-- name: VpcFlowLogsAcceptedTraffic
-- description: Accepted flows, newest first.
-- source: AWS VPC console Athena integration
-- param: limit int = 100 : rows to show
SELECT interface_id, srcaddr, dstaddr, srcport, dstport, protocol, packets, bytes,
       to_timestamp(start) AS start_time, to_timestamp("end") AS end_time
FROM flows
WHERE action = 'ACCEPT'
ORDER BY start DESC, interface_id, srcaddr, dstaddr, srcport, dstport
LIMIT ${limit}

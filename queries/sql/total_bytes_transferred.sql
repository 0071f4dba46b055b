-- name: TotalBytesTransferred
-- description: The source/destination pairs that moved the most bytes.
-- source: AWS VPC console Athena integration
-- param: limit int = 50 : rows to show
SELECT srcaddr, dstaddr, sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows
FROM flows
WHERE srcaddr IS NOT NULL AND dstaddr IS NOT NULL
GROUP BY srcaddr, dstaddr
ORDER BY bytes DESC, srcaddr, dstaddr
LIMIT ${limit}

-- name: TopTalkers
-- description: The source addresses that sent the most bytes.
-- source: AWS VPC console Athena integration
-- param: limit int = 50 : rows to show
SELECT srcaddr, sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows
FROM flows
WHERE srcaddr IS NOT NULL
GROUP BY srcaddr
ORDER BY bytes DESC, srcaddr
LIMIT ${limit}

-- name: TopTalkingSubnets
-- description: The subnets whose interfaces carried the most bytes.
-- source: AWS VPC console Athena integration
-- param: limit int = 50 : rows to show
SELECT subnet_id, sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows
FROM flows
WHERE subnet_id IS NOT NULL
GROUP BY subnet_id
ORDER BY bytes DESC, subnet_id
LIMIT ${limit}

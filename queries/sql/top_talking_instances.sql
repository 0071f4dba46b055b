-- name: TopTalkingInstances
-- description: The EC2 instances whose interfaces carried the most bytes.
-- source: AWS VPC console Athena integration
-- param: limit int = 50 : rows to show
SELECT instance_id, sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows
FROM flows
WHERE instance_id IS NOT NULL
GROUP BY instance_id
ORDER BY bytes DESC, instance_id
LIMIT ${limit}

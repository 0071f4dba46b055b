-- name: CrossAzByAzPair
-- description: Bytes and dollars crossing each pair of Availability Zones (both directions), and how many talker pairs make them up; counted as CrossAzByPair counts them (once, from the sender's egress record).
-- source: flowlens
-- param: usd_per_gb float = 0.01 : price per GB (2^30 bytes, as AWS bills) in each direction
WITH own AS (
  SELECT DISTINCT CASE WHEN flow_direction = 'ingress' THEN dstaddr ELSE srcaddr END AS addr, az_id
  FROM flows
  WHERE az_id IS NOT NULL AND flow_direction IS NOT NULL
),
az AS (SELECT addr, min(az_id) AS az_id FROM own GROUP BY addr HAVING count(*) = 1),
crossing AS (
  SELECT az_pair(s.az_id, d.az_id) AS az_pair,
         least(f.srcaddr, f.dstaddr) || ' ' || greatest(f.srcaddr, f.dstaddr) AS talkers,
         f.bytes
  FROM flows f
  JOIN az s ON f.srcaddr = s.addr
  JOIN az d ON f.dstaddr = d.addr
  WHERE f.flow_direction = 'egress' AND f.action = 'ACCEPT' AND s.az_id <> d.az_id
)
SELECT az_pair,
       sum(bytes) AS bytes,
       round(cross_az_cost(sum(bytes), ${usd_per_gb}), 4) AS usd,
       count(DISTINCT talkers) AS talker_pairs
FROM crossing
GROUP BY az_pair
ORDER BY bytes DESC, az_pair

-- name: CrossAzByPair
-- description: Bytes crossing Availability Zones per talker pair (both directions) with their dollar cost; each crossing counted once, from the sender's egress record; an address's AZ is learnt from its own interface's records.
-- source: flowlens
-- param: usd_per_gb float = 0.01 : price per GB (2^30 bytes, as AWS bills) in each direction
-- param: limit int = 50 : rows to show
WITH own AS (
  SELECT DISTINCT CASE WHEN flow_direction = 'ingress' THEN dstaddr ELSE srcaddr END AS addr, az_id
  FROM flows
  WHERE az_id IS NOT NULL AND flow_direction IS NOT NULL
),
az AS (SELECT addr, min(az_id) AS az_id FROM own GROUP BY addr HAVING count(*) = 1),
crossing AS (
  SELECT least(f.srcaddr, f.dstaddr) AS addr_a, greatest(f.srcaddr, f.dstaddr) AS addr_b,
         f.bytes, least(f.srcport, f.dstport) AS service_port
  FROM flows f
  JOIN az s ON f.srcaddr = s.addr
  JOIN az d ON f.dstaddr = d.addr
  WHERE f.flow_direction = 'egress' AND f.action = 'ACCEPT' AND s.az_id <> d.az_id
)
SELECT c.addr_a, a.az_id AS az_a, c.addr_b, b.az_id AS az_b,
       az_pair(a.az_id, b.az_id) AS az_pair,
       sum(c.bytes) AS bytes,
       round(cross_az_cost(sum(c.bytes), ${usd_per_gb}), 4) AS usd,
       array_to_string(array_agg(DISTINCT c.service_port ORDER BY c.service_port), ',') AS ports
FROM crossing c
JOIN az a ON c.addr_a = a.addr
JOIN az b ON c.addr_b = b.addr
GROUP BY c.addr_a, a.az_id, c.addr_b, b.az_id
ORDER BY bytes DESC, c.addr_a, c.addr_b
LIMIT ${limit}

-- name: RejectedByInterface
-- description: Rejected inbound flows per interface from public sources (what the security groups and NACLs are turning away).
-- source: flowlens
-- param: limit int = 50 : rows to show
SELECT interface_id, count(*) AS flows, count(DISTINCT srcaddr) AS sources,
       count(DISTINCT dstport) AS ports
FROM flows
WHERE action = 'REJECT' AND is_public(srcaddr)
GROUP BY interface_id
ORDER BY flows DESC, interface_id
LIMIT ${limit}

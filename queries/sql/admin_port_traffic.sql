-- name: AdminPortTraffic
-- description: The source addresses that sent the most flows to administrative ports (SSH, RDP, SMB, RPC, NetBIOS, WinRM, Telnet, VNC, databases' admin ports excluded).
-- source: AWS VPC console Athena integration
-- param: limit int = 10 : rows to show
SELECT srcaddr, dstport, count(*) AS flows,
       sum(CASE WHEN action = 'REJECT' THEN 1 ELSE 0 END) AS rejected,
       count(DISTINCT dstaddr) AS destinations
FROM flows
WHERE dstport IN (22, 23, 135, 139, 445, 3389, 5900, 5985, 5986)
GROUP BY srcaddr, dstport
ORDER BY flows DESC, srcaddr, dstport
LIMIT ${limit}

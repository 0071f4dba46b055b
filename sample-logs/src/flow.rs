//! Flow-log records and their text rendering, written independently of the engine.

use crate::topology::{ACCOUNT, AZS, Host, REGION, VPC};

/// One flow-log record, as one ENI saw one direction of a flow in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    pub interface_id: String,
    pub srcaddr: Option<String>,
    pub dstaddr: Option<String>,
    pub srcport: Option<u16>,
    pub dstport: Option<u16>,
    pub protocol: Option<u8>,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    pub start: u64,
    pub end: u64,
    pub action: Option<&'static str>,
    pub log_status: &'static str,
    pub subnet_id: String,
    pub instance_id: Option<String>,
    pub tcp_flags: Option<u8>,
    pub pkt_srcaddr: Option<String>,
    pub pkt_dstaddr: Option<String>,
    pub az_id: String,
    pub flow_direction: Option<&'static str>,
    pub traffic_path: Option<u8>,
    pub pkt_src_aws_service: Option<&'static str>,
    pub pkt_dst_aws_service: Option<&'static str>,
}

/// One side of a conversation.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    pub ip: String,
    pub port: u16,
    /// The VPC host, if the endpoint is inside the VPC.
    pub host: Option<&'a Host>,
}

/// A flow between two endpoints within one aggregation window.
#[derive(Debug, Clone)]
pub struct Conversation<'a> {
    pub client: Endpoint<'a>,
    pub server: Endpoint<'a>,
    pub protocol: u8,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub packets_back: u64,
    pub bytes_back: u64,
    pub start: u64,
    pub end: u64,
    /// Rejected conversations produce only the inbound record at the server.
    pub accepted: bool,
    /// Whether the client is a NAT'd private host reaching the internet
    /// (then `nat` is the NAT gateway that rewrote it).
    pub nat: Option<&'a Host>,
}

impl FlowRecord {
    fn at(host: &Host, c: &Conversation<'_>) -> Self {
        FlowRecord {
            interface_id: host.eni.clone(),
            srcaddr: None,
            dstaddr: None,
            srcport: None,
            dstport: None,
            protocol: Some(c.protocol),
            packets: None,
            bytes: None,
            start: c.start,
            end: c.end,
            action: Some(if c.accepted { "ACCEPT" } else { "REJECT" }),
            log_status: "OK",
            subnet_id: host.subnet.clone(),
            instance_id: host.instance.clone(),
            tcp_flags: None,
            pkt_srcaddr: None,
            pkt_dstaddr: None,
            az_id: AZS[host.az].to_string(),
            flow_direction: None,
            traffic_path: None,
            pkt_src_aws_service: None,
            pkt_dst_aws_service: None,
        }
    }

    fn with_dir(
        mut self,
        src: &Endpoint<'_>,
        dst: &Endpoint<'_>,
        packets: u64,
        bytes: u64,
        egress: bool,
        flags: u8,
    ) -> Self {
        self.srcaddr = Some(src.ip.clone());
        self.dstaddr = Some(dst.ip.clone());
        self.srcport = Some(src.port);
        self.dstport = Some(dst.port);
        self.packets = Some(packets);
        self.bytes = Some(bytes);
        self.pkt_srcaddr = Some(src.ip.clone());
        self.pkt_dstaddr = Some(dst.ip.clone());
        self.flow_direction = Some(if egress { "egress" } else { "ingress" });
        self.tcp_flags = (self.protocol == Some(6)).then_some(flags);
        self
    }

    /// The records every VPC interface involved writes for `c`: both directions at each
    /// in-VPC endpoint (so an intra-VPC flow is recorded twice, once per ENI).
    pub fn from_conversation(c: &Conversation<'_>) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        let internet = |e: &Endpoint<'_>| e.host.is_none();
        // Client side (and the NAT gateway's, for NAT'd egress).
        if let Some(h) = c.client.host {
            let path = if internet(&c.server) {
                Some(8)
            } else {
                Some(1)
            };
            let mut r = FlowRecord::at(h, c).with_dir(
                &c.client,
                &c.server,
                c.packets_out,
                c.bytes_out,
                true,
                if c.accepted { 3 } else { 2 },
            );
            r.traffic_path = path;
            out.push(r);
            if c.accepted {
                out.push(FlowRecord::at(h, c).with_dir(
                    &c.server,
                    &c.client,
                    c.packets_back,
                    c.bytes_back,
                    false,
                    19,
                ));
            }
        }
        if let (Some(nat), Some(_)) = (c.nat, c.client.host) {
            // The NAT gateway's interface sees the private client on one side and the
            // internet on the other; packet-level addresses keep the originals.
            let nat_ep = Endpoint {
                ip: nat.ip.clone(),
                port: c.client.port,
                host: Some(nat),
            };
            let mut r = FlowRecord::at(nat, c).with_dir(
                &nat_ep,
                &c.server,
                c.packets_out,
                c.bytes_out,
                true,
                3,
            );
            r.pkt_srcaddr = Some(c.client.ip.clone());
            r.traffic_path = Some(8);
            out.push(r);
            let mut r = FlowRecord::at(nat, c).with_dir(
                &c.server,
                &nat_ep,
                c.packets_back,
                c.bytes_back,
                false,
                19,
            );
            r.pkt_dstaddr = Some(c.client.ip.clone());
            out.push(r);
        }
        if let Some(h) = c.server.host {
            out.push(FlowRecord::at(h, c).with_dir(
                &c.client,
                &c.server,
                c.packets_out,
                c.bytes_out,
                false,
                if c.accepted { 3 } else { 2 },
            ));
            if c.accepted {
                let mut r = FlowRecord::at(h, c).with_dir(
                    &c.server,
                    &c.client,
                    c.packets_back,
                    c.bytes_back,
                    true,
                    19,
                );
                r.traffic_path = if internet(&c.client) {
                    Some(8)
                } else {
                    Some(1)
                };
                out.push(r);
            }
        }
        out
    }

    /// A NODATA record: the interface saw no traffic in the window.
    pub fn nodata(host: &Host, start: u64, end: u64) -> Self {
        FlowRecord {
            interface_id: host.eni.clone(),
            srcaddr: None,
            dstaddr: None,
            srcport: None,
            dstport: None,
            protocol: None,
            packets: None,
            bytes: None,
            start,
            end,
            action: None,
            log_status: "NODATA",
            subnet_id: host.subnet.clone(),
            instance_id: host.instance.clone(),
            tcp_flags: None,
            pkt_srcaddr: None,
            pkt_dstaddr: None,
            az_id: AZS[host.az].to_string(),
            flow_direction: None,
            traffic_path: None,
            pkt_src_aws_service: None,
            pkt_dst_aws_service: None,
        }
    }

    /// The value of one field by its AWS name, `None` for `-`.
    pub fn field(&self, name: &str) -> Option<String> {
        fn s<T: ToString>(v: &Option<T>) -> Option<String> {
            v.as_ref().map(ToString::to_string)
        }
        match name {
            "version" => Some("5".into()),
            "account-id" => Some(ACCOUNT.into()),
            "interface-id" => Some(self.interface_id.clone()),
            "srcaddr" => self.srcaddr.clone(),
            "dstaddr" => self.dstaddr.clone(),
            "srcport" => s(&self.srcport),
            "dstport" => s(&self.dstport),
            "protocol" => s(&self.protocol),
            "packets" => s(&self.packets),
            "bytes" => s(&self.bytes),
            "start" => Some(self.start.to_string()),
            "end" => Some(self.end.to_string()),
            "action" => s(&self.action),
            "log-status" => Some(self.log_status.into()),
            "vpc-id" => Some(VPC.into()),
            "subnet-id" => Some(self.subnet_id.clone()),
            "instance-id" => self.instance_id.clone(),
            "tcp-flags" => s(&self.tcp_flags),
            "type" => self
                .srcaddr
                .as_ref()
                .map(|a| if a.contains(':') { "IPv6" } else { "IPv4" }.to_string()),
            "pkt-srcaddr" => self.pkt_srcaddr.clone(),
            "pkt-dstaddr" => self.pkt_dstaddr.clone(),
            "region" => Some(REGION.into()),
            "az-id" => Some(self.az_id.clone()),
            "sublocation-type" | "sublocation-id" => None,
            "pkt-src-aws-service" => s(&self.pkt_src_aws_service),
            "pkt-dst-aws-service" => s(&self.pkt_dst_aws_service),
            "flow-direction" => s(&self.flow_direction),
            "traffic-path" => s(&self.traffic_path),
            _ => None,
        }
    }

    /// One text line in `format` (field names), `version` set to `version`.
    pub fn line(&self, format: &[&str], version: u8) -> String {
        let mut out = String::with_capacity(160);
        for (i, name) in format.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if *name == "version" {
                out.push_str(&version.to_string());
            } else {
                out.push_str(self.field(name).as_deref().unwrap_or("-"));
            }
        }
        out
    }
}

/// The default format (v2).
pub const V2_FORMAT: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// The v5 custom order from the AWS documentation's example.
pub const V5_CUSTOM_FORMAT: &[&str] = &[
    "version",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "start",
    "end",
    "type",
    "packets",
    "bytes",
    "account-id",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "interface-id",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "action",
    "tcp-flags",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "traffic-path",
    "flow-direction",
    "log-status",
];

/// Every v2–v5 field, for the parquet flow log.
pub const PARQUET_FORMAT: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
];

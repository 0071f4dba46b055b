//! Every record in `../shared/fixtures/` (real AWS documentation examples and the
//! Elastic integration samples) decodes to the expected values.

use std::path::PathBuf;

use super::*;

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("FLOWLENS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::manifest_dir().join("../../../shared/fixtures"));
    assert!(
        dir.is_dir(),
        "fixtures not found at {} (set FLOWLENS_FIXTURES)",
        dir.display()
    );
    dir
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).expect(name)
}

/// Splits an annotated fixture into (format from the preceding comment, records).
/// Lines starting with `#` are annotations; a trailing ` #...` is an inline comment.
fn sections(text: &str) -> Vec<(Option<String>, String)> {
    let mut out: Vec<(Option<String>, String)> = Vec::new();
    let mut format = None;
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            // `... format: name name ...` (optionally closed by `)`) announces a format.
            if let Some((_, rest)) = comment.split_once("format:") {
                let names: Vec<&str> = rest
                    .trim()
                    .trim_end_matches(')')
                    .split_whitespace()
                    .collect();
                let is_name = |n: &&str| n.chars().all(|c| c.is_ascii_lowercase() || c == '-');
                if names.len() > 1 && names.iter().all(is_name) {
                    format = Some(names.join(" "));
                    out.push((format.clone(), String::new()));
                }
            }
            continue;
        }
        let record = line.split(" #").next().unwrap_or(line);
        if out.is_empty() {
            out.push((format.clone(), String::new()));
        }
        let last = out.last_mut().unwrap();
        last.1.push_str(record);
        last.1.push('\n');
    }
    out.retain(|(_, body)| !body.trim().is_empty());
    out
}

#[test]
fn default_format_examples() {
    let text = read("aws-docs/vpc-flow-logs-aws-docs-default.log");
    let body: String = sections(&text).into_iter().map(|(_, b)| b).collect();
    let d = decode(body.as_bytes(), None);
    assert_eq!(d.malformed, 0, "{:?}", d.errors);
    let b = d.flows();
    assert_eq!(b.num_rows(), 7);
    // Accepted SSH.
    assert_eq!(i32_at(b, "version", 0), Some(2));
    assert_eq!(str_at(b, "account_id", 0).as_deref(), Some("123456789010"));
    assert_eq!(
        str_at(b, "interface_id", 0).as_deref(),
        Some("eni-1235b8ca123456789")
    );
    assert_eq!(str_at(b, "srcaddr", 0).as_deref(), Some("172.31.16.139"));
    assert_eq!(str_at(b, "dstaddr", 0).as_deref(), Some("172.31.16.21"));
    assert_eq!(i32_at(b, "srcport", 0), Some(20641));
    assert_eq!(i32_at(b, "dstport", 0), Some(22));
    assert_eq!(i32_at(b, "protocol", 0), Some(6));
    assert_eq!(i64_at(b, "packets", 0), Some(20));
    assert_eq!(i64_at(b, "bytes", 0), Some(4249));
    assert_eq!(i64_at(b, "start", 0), Some(1418530010));
    assert_eq!(i64_at(b, "end", 0), Some(1418530070));
    assert_eq!(str_at(b, "action", 0).as_deref(), Some("ACCEPT"));
    assert_eq!(str_at(b, "log_status", 0).as_deref(), Some("OK"));
    // Rejected RDP.
    assert_eq!(i32_at(b, "dstport", 1), Some(3389));
    assert_eq!(str_at(b, "action", 1).as_deref(), Some("REJECT"));
    // NODATA and SKIPDATA keep their status and times; the rest is null.
    for (row, status) in [(2, "NODATA"), (3, "SKIPDATA")] {
        assert_eq!(str_at(b, "log_status", row).as_deref(), Some(status));
        assert_eq!(i64_at(b, "start", row), Some(1431280876));
        assert_eq!(i64_at(b, "end", row), Some(1431280934));
        for col in ["srcaddr", "dstaddr", "action"] {
            assert_eq!(str_at(b, col, row), None, "{col}");
        }
        assert_eq!(i64_at(b, "bytes", row), None);
        assert_eq!(i32_at(b, "srcport", row), None);
    }
    assert_eq!(
        str_at(b, "interface_id", 3).as_deref(),
        Some("eni-11111111aaaaaaaaa")
    );
    // ICMP: ports 0, protocol 1.
    assert_eq!(
        (i32_at(b, "srcport", 4), i32_at(b, "protocol", 4)),
        (Some(0), Some(1))
    );
    // IPv6.
    assert_eq!(
        str_at(b, "srcaddr", 6).as_deref(),
        Some("2001:db8:1234:a100:8d6e:3477:df66:f105")
    );
    assert_eq!(i64_at(b, "bytes", 6), Some(8855));
    // Fields outside the v2 format are null.
    assert_eq!(str_at(b, "vpc_id", 0), None);
    assert_eq!(i32_at(b, "tcp_flags", 0), None);
}

#[test]
fn transit_gateway_and_nat_examples() {
    let text = read("aws-docs/vpc-flow-logs-aws-docs-tgw-nat.log");
    let secs = sections(&text);
    assert_eq!(secs.len(), 2, "{secs:?}");
    let tgw = decode(secs[0].1.as_bytes(), secs[0].0.as_deref());
    assert_eq!(tgw.malformed, 0, "{:?}", tgw.errors);
    let b = tgw.flows();
    assert_eq!(b.num_rows(), 4);
    assert_eq!(
        str_at(b, "interface_id", 0).as_deref(),
        Some("eni-33333333333333333")
    );
    assert_eq!(
        str_at(b, "vpc_id", 0).as_deref(),
        Some("vpc-abcdefab012345678")
    );
    assert_eq!(str_at(b, "instance_id", 2), None);
    assert_eq!(i32_at(b, "tcp_flags", 1), Some(19));
    assert_eq!(str_at(b, "type", 0).as_deref(), Some("IPv4"));
    // Through the TGW the interface address differs from the packet address.
    assert_eq!(str_at(b, "srcaddr", 2).as_deref(), Some("10.40.1.175"));
    assert_eq!(str_at(b, "pkt_srcaddr", 2).as_deref(), Some("10.20.33.164"));
    assert_eq!(str_at(b, "pkt_dstaddr", 3).as_deref(), Some("10.20.33.164"));

    let nat = decode(secs[1].1.as_bytes(), secs[1].0.as_deref());
    assert_eq!(nat.malformed, 0, "{:?}", nat.errors);
    let b = nat.flows();
    assert_eq!(b.num_rows(), 6);
    assert_eq!(str_at(b, "instance_id", 0), None);
    assert_eq!(str_at(b, "pkt_dstaddr", 0).as_deref(), Some("203.0.113.5"));
    assert_eq!(
        str_at(b, "instance_id", 4).as_deref(),
        Some("i-01234567890123456")
    );
    assert_eq!(str_at(b, "dstaddr", 5).as_deref(), Some("10.0.1.5"));
}

#[test]
fn v3_tcp_flag_sequence_with_double_space() {
    let text = read("aws-docs/vpc-flow-logs-aws-docs-v3-tcpflags.log");
    let secs = sections(&text);
    assert_eq!(secs.len(), 1);
    let d = decode(secs[0].1.as_bytes(), secs[0].0.as_deref());
    assert_eq!(d.malformed, 0, "{:?}", d.errors);
    let b = d.flows();
    assert_eq!(b.num_rows(), 8);
    let flags: Vec<_> = (0..8).map(|r| i32_at(b, "tcp_flags", r).unwrap()).collect();
    assert_eq!(flags, [2, 18, 2, 18, 1, 1, 3, 19]);
    // This example orders `bytes packets`.
    assert_eq!(
        (i64_at(b, "bytes", 0), i64_at(b, "packets", 0)),
        (Some(568), Some(8))
    );
    assert_eq!(i64_at(b, "bytes", 5), Some(23294588));
    // The line with a double space.
    assert_eq!(i32_at(b, "dstport", 7), Some(43638));
    assert_eq!(str_at(b, "pkt_srcaddr", 7).as_deref(), Some("10.0.0.62"));
}

#[test]
fn v5_service_path_direction() {
    let text = read("aws-docs/vpc-flow-logs-aws-docs-v5.log");
    let secs = sections(&text);
    let d = decode(secs[0].1.as_bytes(), secs[0].0.as_deref());
    assert_eq!(d.malformed, 0, "{:?}", d.errors);
    let b = d.flows();
    assert_eq!(b.num_rows(), 2);
    assert_eq!(i32_at(b, "version", 0), Some(5));
    assert_eq!(str_at(b, "pkt_src_aws_service", 0).as_deref(), Some("S3"));
    assert_eq!(str_at(b, "pkt_dst_aws_service", 0), None);
    assert_eq!(str_at(b, "pkt_dst_aws_service", 1).as_deref(), Some("S3"));
    assert_eq!(i32_at(b, "traffic_path", 0), None);
    assert_eq!(i32_at(b, "traffic_path", 1), Some(8));
    assert_eq!(str_at(b, "flow_direction", 0).as_deref(), Some("ingress"));
    assert_eq!(str_at(b, "flow_direction", 1).as_deref(), Some("egress"));
    assert_eq!(str_at(b, "az_id", 0).as_deref(), Some("apse2-az3"));
    assert_eq!(str_at(b, "region", 0).as_deref(), Some("ap-southeast-2"));
    assert_eq!(str_at(b, "sublocation_type", 0), None);
    assert_eq!(i64_at(b, "bytes", 0), Some(15044));
    assert_eq!(i32_at(b, "tcp_flags", 1), Some(3));
}

#[test]
fn v7_ecs_and_v8_reject_reason() {
    let text = read("vpc-flow-logs-elastic-integrations-v7-v8.log");
    let v7 = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id ecs-container-id ecs-second-container-id ecs-service-name ecs-task-definition-arn ecs-task-arn ecs-task-id";
    let v8 = format!("{v7} reject-reason");
    let records: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(records.len(), 3);
    // As S3 delivers them: a header line, then the records.
    let v7_obj = format!("{}\n{}\n{}\n", v7.replace('-', "_"), records[0], records[1]);
    let d = decode(v7_obj.as_bytes(), None);
    assert_eq!(d.malformed, 0, "{:?}", d.errors);
    let b = d.flows();
    assert_eq!(b.num_rows(), 2);
    assert_eq!(str_at(b, "dstaddr", 0).as_deref(), Some("2a02:cf40::"));
    assert_eq!(
        str_at(b, "ecs_cluster_name", 0).as_deref(),
        Some("frontend-cluster")
    );
    assert_eq!(
        str_at(b, "ecs_task_definition_arn", 1).as_deref(),
        Some("arn:aws:ecs:us-east-1:000000000000:task-definition/backend:3")
    );
    assert_eq!(str_at(b, "ecs_task_id", 1).as_deref(), Some("b42ecfbe-17f"));
    assert_eq!(str_at(b, "interface_id", 0), None);
    assert_eq!(str_at(b, "log_status", 1).as_deref(), Some("NODATA"));
    assert_eq!(str_at(b, "flow_direction", 1).as_deref(), Some("egress"));

    let d = decode(format!("{}\n", records[2]).as_bytes(), Some(&v8));
    assert_eq!(d.malformed, 0, "{:?}", d.errors);
    let b = d.flows();
    assert_eq!(str_at(b, "reject_reason", 0).as_deref(), Some("BPA"));
    assert_eq!(
        str_at(b, "ecs_service_name", 0).as_deref(),
        Some("payments-service")
    );
    assert_eq!(i64_at(b, "bytes", 0), Some(33615));
}

#[test]
fn waf_ndjson_examples() {
    let text = read("waf-logs-elastic-integrations.jsonl");
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let d = decode(body.as_bytes(), None);
    assert_eq!(d.malformed, 0, "{:?}", d.errors);
    let b = d.waf();
    assert_eq!(b.num_rows(), 4);
    assert_eq!(str_at(b, "client_ip", 0).as_deref(), Some("89.160.20.156"));
    assert_eq!(str_at(b, "country", 0).as_deref(), Some("AU"));
    assert_eq!(str_at(b, "uri", 0).as_deref(), Some("/foo"));
    assert_eq!(str_at(b, "user_agent", 0).as_deref(), Some("curl/7.61.1"));
    assert_eq!(str_at(b, "action", 0).as_deref(), Some("BLOCK"));
    assert_eq!(str_at(b, "http_method", 0).as_deref(), Some("GET"));
    assert_eq!(str_at(b, "webacl_name", 0).as_deref(), Some("STMTest"));
    assert_eq!(str_at(b, "region", 1).as_deref(), Some("us-east-1"));
    assert_eq!(
        str_at(b, "terminating_rule_type", 2).as_deref(),
        Some("GROUP")
    );
    let ts = b.column(b.schema().index_of("timestamp").unwrap());
    assert_eq!(
        ts.as_primitive::<arrow::datatypes::TimestampMillisecondType>()
            .value(0),
        1576280412771
    );
    let details = b.column(
        b.schema()
            .index_of("terminating_rule_match_details")
            .unwrap(),
    );
    let first = details.as_list::<i32>().value(0);
    let first = first.as_struct();
    assert_eq!(first.column(0).as_string_view().value(0), "SQL_INJECTION");
    let matched = first.column(3).as_list::<i32>().value(0);
    let matched: Vec<_> = matched.as_string_view().iter().flatten().collect();
    assert_eq!(matched, ["10", "AND", "1"]);
    let labels = b.column(b.schema().index_of("labels").unwrap());
    assert_eq!(
        labels.as_list::<i32>().value(0).as_string_view().value(0),
        "value"
    );
}

#[test]
fn waf_pretty_printed_doc_examples() {
    let text = read("aws-docs/waf-logs-aws-docs-examples.md");
    // The JSON examples are the fenced blocks.
    let body: String = text
        .split("```")
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .join("\n");
    for input in [body.clone(), body.replace('\n', " ")] {
        let d = decode(input.as_bytes(), None);
        assert_eq!(d.malformed, 0, "{:?}", d.errors);
        let b = d.waf();
        assert_eq!(b.num_rows(), 6);
        let ips: Vec<_> = (0..6).map(|r| str_at(b, "client_ip", r).unwrap()).collect();
        assert_eq!(
            ips,
            [
                "1.1.1.1",
                "3.3.3.3",
                "3.3.3.3",
                "1.1.1.1",
                "72.21.198.65",
                "72.21.198.65"
            ]
        );
        // Rule group with a terminating rule and a counted one.
        let groups = b.column(b.schema().index_of("rule_group_list").unwrap());
        let g = groups.as_list::<i32>().value(2);
        let g = g.as_struct();
        assert_eq!(g.column(1).as_string_view().value(0), "RuleA-XSS");
        let counted = g.column(4).as_list::<i32>().value(0);
        assert_eq!(counted.as_string_view().value(0), "RuleB-SQLi");
    }
}

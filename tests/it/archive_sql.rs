//! `archive` then `sql`: the archive holds exactly the decoded records, archiving again
//! changes nothing, and every saved query answers what an independent computation over
//! the decoded records says.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use flowlens_engine::archive::{self, ArchiveStore};
use flowlens_engine::pipeline::BatchSink;
use flowlens_engine::source::Location;
use flowlens_engine::{Progress, ScanOptions, Scanner};
use flowlens_model::LogKind;
use flowlens_queries::{Archive, S3Options, saved};

/// Everything decoded, by kind (the independent side of the comparison).
#[derive(Default)]
struct Collect(Vec<RecordBatch>, Vec<RecordBatch>);

impl BatchSink for Collect {
    fn batch(
        &mut self,
        kind: LogKind,
        batch: &RecordBatch,
    ) -> Result<(), flowlens_engine::error::BoxError> {
        match kind {
            LogKind::Flows => self.0.push(batch.clone()),
            LogKind::Waf => self.1.push(batch.clone()),
        }
        Ok(())
    }
}

/// A cell as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum V {
    I(i64),
    S(String),
    N,
}

fn s(v: Option<&str>) -> V {
    v.map_or(V::N, |v| V::S(v.to_string()))
}

#[derive(Debug, Clone)]
struct Flow {
    interface_id: V,
    srcaddr: V,
    dstaddr: V,
    srcport: V,
    dstport: V,
    protocol: V,
    packets: i64,
    bytes: i64,
    action: V,
    instance_id: V,
    subnet_id: V,
    pkt_srcaddr: V,
    pkt_dstaddr: V,
    az_id: V,
    flow_direction: V,
    pkt_dst_aws_service: V,
}

fn flows_of(batches: &[RecordBatch]) -> Vec<Flow> {
    let mut out = Vec::new();
    for b in batches {
        let st = |n: &str| b.column_by_name(n).unwrap().as_string_view().clone();
        let i32c = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<Int32Type>()
                .clone()
        };
        let i64c = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone()
        };
        let (iface, src, dst, action, inst, subnet, psrc, pdst, az, dir, svc) = (
            st("interface_id"),
            st("srcaddr"),
            st("dstaddr"),
            st("action"),
            st("instance_id"),
            st("subnet_id"),
            st("pkt_srcaddr"),
            st("pkt_dstaddr"),
            st("az_id"),
            st("flow_direction"),
            st("pkt_dst_aws_service"),
        );
        let (sport, dport, proto) = (i32c("srcport"), i32c("dstport"), i32c("protocol"));
        let (packets, bytes) = (i64c("packets"), i64c("bytes"));
        let sv =
            |a: &arrow::array::StringViewArray, i: usize| s((!a.is_null(i)).then(|| a.value(i)));
        let iv = |a: &arrow::array::Int32Array, i: usize| {
            if a.is_null(i) {
                V::N
            } else {
                V::I(a.value(i) as i64)
            }
        };
        for i in 0..b.num_rows() {
            out.push(Flow {
                interface_id: sv(&iface, i),
                srcaddr: sv(&src, i),
                dstaddr: sv(&dst, i),
                srcport: iv(&sport, i),
                dstport: iv(&dport, i),
                protocol: iv(&proto, i),
                packets: if packets.is_null(i) {
                    0
                } else {
                    packets.value(i)
                },
                bytes: if bytes.is_null(i) { 0 } else { bytes.value(i) },
                action: sv(&action, i),
                instance_id: sv(&inst, i),
                subnet_id: sv(&subnet, i),
                pkt_srcaddr: sv(&psrc, i),
                pkt_dstaddr: sv(&pdst, i),
                az_id: sv(&az, i),
                flow_direction: sv(&dir, i),
                pkt_dst_aws_service: sv(&svc, i),
            });
        }
    }
    out
}

/// Groups `rows` by `key`, folds each group into metric columns with `agg`, orders by
/// `order` (metric index, descending) then the key ascending, keeps `limit`.
fn grouped<T, K: Ord + Clone + std::hash::Hash>(
    rows: impl Iterator<Item = T>,
    key: impl Fn(&T) -> K,
    agg: impl Fn(&[T]) -> Vec<V>,
    order: usize,
    limit: usize,
    cells: impl Fn(&K) -> Vec<V>,
) -> Vec<Vec<V>> {
    let mut groups: HashMap<K, Vec<T>> = HashMap::new();
    for r in rows {
        groups.entry(key(&r)).or_default().push(r);
    }
    let mut out: Vec<(Vec<V>, K)> = groups.into_iter().map(|(k, g)| (agg(&g), k)).collect();
    out.sort_by(|a, b| b.0[order].cmp(&a.0[order]).then_with(|| a.1.cmp(&b.1)));
    out.into_iter()
        .take(limit)
        .map(|(m, k)| {
            let mut row = cells(&k);
            row.extend(m);
            row
        })
        .collect()
}

fn distinct(it: impl Iterator<Item = V>) -> V {
    V::I(it.filter(|v| *v != V::N).collect::<BTreeSet<_>>().len() as i64)
}

fn result_rows(batches: &[RecordBatch]) -> Vec<Vec<V>> {
    let mut out = Vec::new();
    for b in batches {
        let cols: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok())
            .collect();
        for i in 0..b.num_rows() {
            let mut row = Vec::new();
            for (j, c) in b.columns().iter().enumerate() {
                let v = if c.is_null(i) {
                    V::N
                } else if let Some(x) = c.as_primitive_opt::<Int64Type>() {
                    V::I(x.value(i))
                } else if let Some(x) = c.as_primitive_opt::<Int32Type>() {
                    V::I(x.value(i) as i64)
                } else if let Some(x) = c.as_primitive_opt::<arrow::datatypes::UInt64Type>() {
                    V::I(x.value(i) as i64)
                } else if let Some(s) = &cols[j] {
                    V::S(s.as_string::<i32>().value(i).to_string())
                } else {
                    let f = ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).unwrap();
                    V::S(f.value(i).to_string())
                };
                row.push(v);
            }
            out.push(row);
        }
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn query(a: &Archive, sql: &str) -> Vec<Vec<V>> {
    match a.query(sql).await {
        Ok(b) => result_rows(&b),
        Err(e) => panic!("{}", e.render(sql)),
    }
}

async fn saved_rows(a: &Archive, name: &str, params: &[(&str, &str)]) -> Vec<Vec<V>> {
    let q = saved::find(name).unwrap_or_else(|| panic!("no saved query {name}"));
    let p: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    query(a, &q.render(&p).unwrap()).await
}

fn count_rows(files: &std::path::Path) -> usize {
    walk(files)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn archive_then_saved_queries_match_an_independent_computation() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let data = tmp.path().join("archive");
    flowlens_samples::generate(&flowlens_samples::Config {
        out: logs.clone(),
        hours: 1,
        seed: 7,
        scale: 0.5,
        ..Default::default()
    })
    .unwrap();
    let rt = runtime();
    rt.block_on(async {
        let scanner = Arc::new(Scanner::new());
        let sources = vec![Location::parse(logs.to_str().unwrap()).unwrap()];
        let opts = ScanOptions::default();
        let mut decoded = Collect::default();
        let report = scanner
            .scan(&sources, &opts, &mut decoded, &Progress::default())
            .await
            .unwrap();
        assert!(
            report.flow_records > 1000 && report.waf_records > 500,
            "{report:?}"
        );

        // Archive: every decoded record, once.
        let store = ArchiveStore::Local(data.clone());
        let first = archive::run(
            &scanner,
            &sources,
            &opts,
            store.clone(),
            &Progress::default(),
        )
        .await
        .unwrap();
        assert_eq!(first.stats.flow_records, report.flow_records);
        assert_eq!(first.stats.waf_records, report.waf_records);
        assert_eq!(first.stats.objects_archived, report.objects_read);
        let files = count_rows(&data);

        let a = Archive::open(data.to_str().unwrap(), &S3Options::default(), 1)
            .await
            .unwrap();
        let want = (
            vec![vec![V::I(report.flow_records as i64)]],
            vec![vec![V::I(report.waf_records as i64)]],
        );
        assert_eq!(counts(&a).await, want);

        // Archiving again reads nothing; without the manifest it rewrites the same files.
        let second = archive::run(
            &scanner,
            &sources,
            &opts,
            store.clone(),
            &Progress::default(),
        )
        .await
        .unwrap();
        assert_eq!(second.stats.objects_archived, 0);
        assert_eq!(second.objects_already_archived, report.objects_read);
        std::fs::remove_file(data.join(flowlens_model::archive::MANIFEST_FILE)).unwrap();
        let third = archive::run(&scanner, &sources, &opts, store, &Progress::default())
            .await
            .unwrap();
        assert_eq!(third.stats.flow_records, report.flow_records);
        assert_eq!(count_rows(&data), files);
        assert_eq!(counts(&a).await, want);

        // Partitions prune and agree with the records' own times.
        let hours = query(
            &a,
            "SELECT count(DISTINCT hour) FROM flows WHERE date = '2025-06-02'",
        )
        .await;
        assert!(matches!(hours[0][0], V::I(n) if n >= 1), "{hours:?}");

        check_flow_queries(&a, &flows_of(&decoded.0)).await;
        check_waf_queries(&a, &decoded.1).await;
    });
}

async fn counts(a: &Archive) -> (Vec<Vec<V>>, Vec<Vec<V>>) {
    (
        query(a, "SELECT count(*) FROM flows").await,
        query(a, "SELECT count(*) FROM waf").await,
    )
}

fn sum(g: &[Flow], f: impl Fn(&Flow) -> i64) -> V {
    V::I(g.iter().map(f).sum())
}

async fn check_flow_queries(a: &Archive, flows: &[Flow]) {
    let talkers = |key: fn(&Flow) -> V, limit: usize| {
        grouped(
            flows.iter().filter(move |f| key(f) != V::N).cloned(),
            key,
            |g| {
                vec![
                    sum(g, |f| f.bytes),
                    sum(g, |f| f.packets),
                    V::I(g.len() as i64),
                ]
            },
            0,
            limit,
            |k| vec![k.clone()],
        )
    };
    assert_eq!(
        saved_rows(a, "TopTalkers", &[]).await,
        talkers(|f| f.srcaddr.clone(), 50)
    );
    assert_eq!(
        saved_rows(a, "TopTalkersPacketLevel", &[]).await,
        talkers(|f| f.pkt_srcaddr.clone(), 50)
    );
    assert_eq!(
        saved_rows(a, "TopTalkingInstances", &[("limit", "7")]).await,
        talkers(|f| f.instance_id.clone(), 7)
    );
    assert_eq!(
        saved_rows(a, "TopTalkingSubnets", &[]).await,
        talkers(|f| f.subnet_id.clone(), 50)
    );
    assert!(!saved_rows(a, "TopTalkingInstances", &[]).await.is_empty());

    let pairs = |src: fn(&Flow) -> V, dst: fn(&Flow) -> V| {
        grouped(
            flows
                .iter()
                .filter(move |f| src(f) != V::N && dst(f) != V::N)
                .cloned(),
            move |f| (src(f), dst(f)),
            |g| {
                vec![
                    sum(g, |f| f.bytes),
                    sum(g, |f| f.packets),
                    V::I(g.len() as i64),
                ]
            },
            0,
            50,
            |k| vec![k.0.clone(), k.1.clone()],
        )
    };
    assert_eq!(
        saved_rows(a, "TotalBytesTransferred", &[]).await,
        pairs(|f| f.srcaddr.clone(), |f| f.dstaddr.clone())
    );
    assert_eq!(
        saved_rows(a, "TotalBytesTransferredPacketLevel", &[]).await,
        pairs(|f| f.pkt_srcaddr.clone(), |f| f.pkt_dstaddr.clone())
    );

    let is = |v: &V, s: &str| *v == V::S(s.into());
    let reject = |f: &Flow| is(&f.action, "REJECT");
    let admin = [22, 23, 135, 139, 445, 3389, 5900, 5985, 5986];
    let want = grouped(
        flows
            .iter()
            .filter(|f| matches!(f.dstport, V::I(p) if admin.contains(&p)))
            .cloned(),
        |f| (f.srcaddr.clone(), f.dstport.clone()),
        |g| {
            vec![
                V::I(g.len() as i64),
                V::I(g.iter().filter(|f| reject(f)).count() as i64),
                distinct(g.iter().map(|f| f.dstaddr.clone())),
            ]
        },
        0,
        10,
        |k| vec![k.0.clone(), k.1.clone()],
    );
    assert!(!want.is_empty());
    assert_eq!(saved_rows(a, "AdminPortTraffic", &[]).await, want);

    let want = grouped(
        flows
            .iter()
            .filter(|f| reject(f) && f.protocol == V::I(6))
            .cloned(),
        |f| (f.srcaddr.clone(), f.dstport.clone()),
        |g| {
            vec![
                V::I(g.len() as i64),
                distinct(g.iter().map(|f| f.dstaddr.clone())),
                sum(g, |f| f.packets),
            ]
        },
        0,
        100,
        |k| vec![k.0.clone(), k.1.clone()],
    );
    assert!(!want.is_empty());
    assert_eq!(saved_rows(a, "RejectedTCPTraffic", &[]).await, want);

    let want = grouped(
        flows.iter().filter(|f| reject(f)).cloned(),
        |f| (f.srcaddr.clone(), f.protocol.clone()),
        |g| {
            vec![
                V::I(g.len() as i64),
                distinct(g.iter().map(|f| f.dstport.clone())),
                distinct(g.iter().map(|f| f.dstaddr.clone())),
            ]
        },
        0,
        100,
        |k| vec![k.0.clone(), k.1.clone()],
    );
    assert_eq!(saved_rows(a, "RejectedTraffic", &[]).await, want);

    let want = grouped(
        flows
            .iter()
            .filter(|f| matches!(f.dstport, V::I(22 | 3389)))
            .cloned(),
        |f| {
            (
                f.srcaddr.clone(),
                f.dstaddr.clone(),
                f.dstport.clone(),
                f.action.clone(),
            )
        },
        |g| vec![V::I(g.len() as i64), sum(g, |f| f.bytes)],
        0,
        100,
        |k| vec![k.0.clone(), k.1.clone(), k.2.clone(), k.3.clone()],
    );
    assert!(!want.is_empty());
    assert_eq!(saved_rows(a, "SshRdpTraffic", &[]).await, want);

    for (name, sep) in [("IPv4Traffic", '.'), ("IPv6Traffic", ':')] {
        let mut want: BTreeMap<V, Vec<V>> = BTreeMap::new();
        for f in flows.iter().filter(|f| matches!((&f.srcaddr, &f.dstaddr), (V::S(x), V::S(y)) if x.contains(sep) && y.contains(sep))) {
            let e = want.entry(f.action.clone()).or_insert_with(|| vec![V::I(0), V::I(0), V::I(0)]);
            for (slot, add) in e.iter_mut().zip([1, f.packets, f.bytes]) {
                if let V::I(n) = slot {
                    *n += add;
                }
            }
        }
        let want: Vec<Vec<V>> = want
            .into_iter()
            .map(|(k, mut m)| {
                m.insert(0, k);
                m
            })
            .collect();
        assert_eq!(saved_rows(a, name, &[]).await, want, "{name}");
    }

    // Address pivots: the busiest source, its TCP traffic and its flows both ways.
    let V::S(top) = talkers(|f| f.srcaddr.clone(), 1)[0][0].clone() else {
        panic!()
    };
    let want = grouped(
        flows
            .iter()
            .filter(|f| f.protocol == V::I(6) && is(&f.srcaddr, &top))
            .cloned(),
        |f| (f.dstaddr.clone(), f.dstport.clone()),
        |g| {
            vec![
                sum(g, |f| f.bytes),
                sum(g, |f| f.packets),
                V::I(g.len() as i64),
            ]
        },
        0,
        50,
        |k| vec![k.0.clone(), k.1.clone()],
    );
    assert_eq!(
        saved_rows(a, "TopTCPTraffic", &[("addr", &top)]).await,
        want
    );
    let from = saved_rows(
        a,
        "TrafficFrmSrcAddr",
        &[("addr", &top), ("limit", "100000")],
    )
    .await;
    assert_eq!(
        from.len(),
        flows.iter().filter(|f| is(&f.srcaddr, &top)).count()
    );
    assert!(from.iter().all(|r| r[1] == V::S(top.clone())));
    let to = saved_rows(
        a,
        "TrafficToDstAddr",
        &[("addr", &top), ("limit", "100000")],
    )
    .await;
    assert_eq!(
        to.len(),
        flows.iter().filter(|f| is(&f.dstaddr, &top)).count()
    );
    let accepted = saved_rows(a, "VpcFlowLogsAcceptedTraffic", &[("limit", "100000")]).await;
    assert_eq!(
        accepted.len(),
        flows.iter().filter(|f| is(&f.action, "ACCEPT")).count()
    );

    // Egress to public destinations, by destination.
    let private = |v: &V| matches!(v, V::S(s) if flowlens_model::net::parse_ip(s).is_some_and(flowlens_model::net::is_private));
    let public = |v: &V| matches!(v, V::S(s) if flowlens_model::net::parse_ip(s).is_some_and(|ip| !flowlens_model::net::is_private(ip)));
    let want = grouped(
        flows
            .iter()
            .filter(|f| is(&f.action, "ACCEPT") && private(&f.srcaddr) && public(&f.dstaddr))
            .cloned(),
        |f| (f.dstaddr.clone(), f.pkt_dst_aws_service.clone()),
        |g| {
            vec![
                sum(g, |f| f.bytes),
                distinct(g.iter().map(|f| f.srcaddr.clone())),
                V::I(g.len() as i64),
            ]
        },
        0,
        50,
        |k| vec![k.0.clone(), k.1.clone()],
    );
    assert!(!want.is_empty());
    assert_eq!(saved_rows(a, "EgressByDestination", &[]).await, want);

    let want = grouped(
        flows
            .iter()
            .filter(|f| reject(f) && public(&f.srcaddr))
            .cloned(),
        |f| f.interface_id.clone(),
        |g| {
            vec![
                V::I(g.len() as i64),
                distinct(g.iter().map(|f| f.srcaddr.clone())),
                distinct(g.iter().map(|f| f.dstport.clone())),
            ]
        },
        0,
        50,
        |k| vec![k.clone()],
    );
    assert_eq!(saved_rows(a, "RejectedByInterface", &[]).await, want);

    // Cross-AZ: addresses' AZs from their own interfaces' records, egress only.
    let mut own: HashMap<V, BTreeSet<V>> = HashMap::new();
    for f in flows
        .iter()
        .filter(|f| f.az_id != V::N && f.flow_direction != V::N)
    {
        let addr = if is(&f.flow_direction, "ingress") {
            &f.dstaddr
        } else {
            &f.srcaddr
        };
        own.entry(addr.clone()).or_default().insert(f.az_id.clone());
    }
    let az = |a: &V| {
        own.get(a)
            .filter(|s| s.len() == 1)
            .and_then(|s| s.iter().next().cloned())
    };
    let mut want: Vec<(i64, V, V, V, V, BTreeSet<i64>)> = Vec::new();
    let mut by_pair: BTreeMap<(V, V), (i64, BTreeSet<i64>)> = BTreeMap::new();
    for f in flows
        .iter()
        .filter(|f| is(&f.flow_direction, "egress") && is(&f.action, "ACCEPT"))
    {
        if let (Some(x), Some(y)) = (az(&f.srcaddr), az(&f.dstaddr))
            && x != y
        {
            let (lo, hi) = if f.srcaddr <= f.dstaddr {
                (&f.srcaddr, &f.dstaddr)
            } else {
                (&f.dstaddr, &f.srcaddr)
            };
            let e = by_pair.entry((lo.clone(), hi.clone())).or_default();
            e.0 += f.bytes;
            if let (V::I(a), V::I(b)) = (&f.srcport, &f.dstport) {
                e.1.insert(*a.min(b));
            }
        }
    }
    // Per AZ pair: bytes, dollars and talker pairs, from the same crossings.
    let mut by_az: BTreeMap<String, (i64, usize)> = BTreeMap::new();
    for ((a, b), (bytes, _)) in &by_pair {
        let (Some(V::S(x)), Some(V::S(y))) = (az(a), az(b)) else {
            panic!("{a:?} {b:?}")
        };
        let pair = if x < y {
            format!("{x} <-> {y}")
        } else {
            format!("{y} <-> {x}")
        };
        let e = by_az.entry(pair).or_default();
        e.0 += bytes;
        e.1 += 1;
    }
    let mut want_az: Vec<(String, i64, usize)> =
        by_az.into_iter().map(|(p, (b, n))| (p, b, n)).collect();
    want_az.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let got = saved_rows(a, "CrossAzByAzPair", &[]).await;
    assert_eq!(got.len(), want_az.len());
    for (g, (pair, bytes, n)) in got.iter().zip(&want_az) {
        assert_eq!(g[..2], [V::S(pair.clone()), V::I(*bytes)]);
        let usd = (flowlens_model::net::cross_az_usd(*bytes as f64, 0.01) * 1e4).round() / 1e4;
        let V::S(got_usd) = &g[2] else {
            panic!("{g:?}")
        };
        assert!(
            (got_usd.parse::<f64>().unwrap() - usd).abs() < 1e-9,
            "{got_usd} vs {usd}"
        );
        assert_eq!(g[3], V::I(*n as i64));
    }

    for ((a, b), (bytes, ports)) in by_pair {
        want.push((
            bytes,
            a.clone(),
            az(&a).unwrap(),
            b.clone(),
            az(&b).unwrap(),
            ports,
        ));
    }
    want.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (&a.1, &a.3).cmp(&(&b.1, &b.3))));
    assert!(!want.is_empty(), "the samples have cross-AZ talkers");
    let got = saved_rows(a, "CrossAzByPair", &[]).await;
    assert_eq!(got.len(), want.len().min(50));
    for (g, w) in got.iter().zip(&want) {
        let (V::S(x), V::S(y)) = (&w.2, &w.4) else {
            panic!()
        };
        let pair = if x < y {
            format!("{x} <-> {y}")
        } else {
            format!("{y} <-> {x}")
        };
        let usd = (flowlens_model::net::cross_az_usd(w.0 as f64, 0.01) * 1e4).round() / 1e4;
        let ports =
            w.5.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",");
        assert_eq!(
            g[..6],
            [
                w.1.clone(),
                w.2.clone(),
                w.3.clone(),
                w.4.clone(),
                V::S(pair),
                V::I(w.0)
            ]
        );
        let V::S(got_usd) = &g[6] else {
            panic!("{g:?}")
        };
        assert!(
            (got_usd.parse::<f64>().unwrap() - usd).abs() < 1e-9,
            "{got_usd} vs {usd}"
        );
        assert_eq!(g[7], V::S(ports));
    }
}

async fn check_waf_queries(a: &Archive, batches: &[RecordBatch]) {
    #[derive(Clone)]
    struct Req {
        ts: i64,
        ip: V,
        country: V,
        action: V,
        rule_type: V,
        xff: V,
        counted: Vec<String>,
        excluded: Vec<(String, String)>,
    }
    let mut reqs = Vec::new();
    for b in batches {
        let st = |n: &str| b.column_by_name(n).unwrap().as_string_view().clone();
        let ts = b
            .column_by_name("timestamp")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>()
            .clone();
        let (ip, country, action, rt, xff) = (
            st("client_ip"),
            st("country"),
            st("action"),
            st("terminating_rule_type"),
            st("x_forwarded_for"),
        );
        let ntm = b
            .column_by_name("non_terminating_matching_rules")
            .unwrap()
            .as_list::<i32>()
            .clone();
        let groups = b
            .column_by_name("rule_group_list")
            .unwrap()
            .as_list::<i32>()
            .clone();
        let sv =
            |a: &arrow::array::StringViewArray, i: usize| s((!a.is_null(i)).then(|| a.value(i)));
        for i in 0..b.num_rows() {
            let mut counted = Vec::new();
            if !ntm.is_null(i) {
                let rules = ntm.value(i);
                let rules = rules.as_struct();
                let (id, act) = (
                    rules.column_by_name("rule_id").unwrap().as_string_view(),
                    rules.column_by_name("action").unwrap().as_string_view(),
                );
                for j in 0..rules.len() {
                    if !act.is_null(j) && act.value(j) == "COUNT" {
                        counted.push(id.value(j).to_string());
                    }
                }
            }
            let mut excluded = Vec::new();
            if !groups.is_null(i) {
                let g = groups.value(i);
                let g = g.as_struct();
                let gid = g.column_by_name("rule_group_id").unwrap().as_string_view();
                let ex = g
                    .column_by_name("excluded_rule_ids")
                    .unwrap()
                    .as_list::<i32>();
                for j in 0..g.len() {
                    if ex.is_null(j) {
                        continue;
                    }
                    let ids = ex.value(j);
                    for k in ids.as_string_view().iter().flatten() {
                        excluded.push((gid.value(j).to_string(), k.to_string()));
                    }
                }
            }
            reqs.push(Req {
                ts: ts.value(i),
                ip: sv(&ip, i),
                country: sv(&country, i),
                action: sv(&action, i),
                rule_type: sv(&rt, i),
                xff: sv(&xff, i),
                counted,
                excluded,
            });
        }
    }
    let is = |v: &V, s: &str| *v == V::S(s.into());

    let want = grouped(
        reqs.iter().cloned(),
        |r| (r.ts.div_euclid(300_000), r.ip.clone()),
        |g| vec![V::I(g.len() as i64)],
        0,
        100,
        |k| {
            vec![
                V::S(
                    chrono::DateTime::from_timestamp_millis(k.0 * 300_000)
                        .unwrap()
                        .format("%Y-%m-%dT%H:%M:%SZ")
                        .to_string(),
                ),
                k.1.clone(),
            ]
        },
    );
    let got = saved_rows(a, "WafRequestsPerIp5Min", &[]).await;
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g[1..], w[1..]);
        let (V::S(gt), V::S(wt)) = (&g[0], &w[0]) else {
            panic!()
        };
        assert!(gt.starts_with(&wt[..19]), "{gt} vs {wt}");
    }

    let want = grouped(
        reqs.iter()
            .filter(|r| is(&r.rule_type, "RATE_BASED") && is(&r.action, "BLOCK"))
            .cloned(),
        |r| (r.ip.clone(), r.country.clone()),
        |g| vec![V::I(g.len() as i64)],
        0,
        100,
        |k| vec![k.0.clone(), k.1.clone()],
    );
    assert!(!want.is_empty());
    // Ordered by count then client_ip only: compare as sets of rows.
    let mut got = saved_rows(a, "WafTopRateBasedBlockedIps", &[]).await;
    let mut want = want;
    got.sort();
    want.sort();
    assert_eq!(got, want);

    let want = grouped(
        reqs.iter().filter(|r| is(&r.action, "BLOCK")).cloned(),
        |r| r.country.clone(),
        |g| {
            vec![
                V::I(g.len() as i64),
                distinct(g.iter().map(|r| r.ip.clone())),
            ]
        },
        0,
        usize::MAX,
        |k| vec![k.clone()],
    );
    assert_eq!(saved_rows(a, "WafBlocksByCountry", &[]).await, want);

    let want = grouped(
        reqs.iter()
            .flat_map(|r| r.counted.iter().map(move |c| (c.clone(), r.ip.clone()))),
        |(c, _)| V::S(c.clone()),
        |g| {
            vec![
                V::I(g.len() as i64),
                distinct(g.iter().map(|(_, ip)| ip.clone())),
            ]
        },
        0,
        usize::MAX,
        |k| vec![k.clone()],
    );
    assert!(!want.is_empty(), "the samples have COUNT-mode matches");
    assert_eq!(saved_rows(a, "WafCountedRuleMatches", &[]).await, want);

    let want = grouped(
        reqs.iter().flat_map(|r| {
            r.excluded
                .iter()
                .map(move |(g, e)| (g.clone(), e.clone(), r.ip.clone()))
        }),
        |(g, e, _)| (V::S(g.clone()), V::S(e.clone())),
        |g| {
            vec![
                V::I(g.len() as i64),
                distinct(g.iter().map(|(_, _, ip)| ip.clone())),
            ]
        },
        0,
        usize::MAX,
        |k| vec![k.0.clone(), k.1.clone()],
    );
    assert!(!want.is_empty(), "the samples have excluded-rule matches");
    assert_eq!(saved_rows(a, "WafExcludedRuleMatches", &[]).await, want);

    let want = grouped(
        reqs.iter().filter(|r| r.xff != V::N).cloned(),
        |r| r.xff.clone(),
        |g| {
            vec![
                V::I(g.len() as i64),
                distinct(g.iter().map(|r| r.ip.clone())),
            ]
        },
        0,
        100,
        |k| vec![k.clone()],
    );
    assert!(!want.is_empty(), "the samples have proxied requests");
    assert_eq!(saved_rows(a, "WafXForwardedFor", &[]).await, want);
}

fn finding(
    id: &str,
    detector: &str,
    label: &str,
    score: i64,
    start: &str,
    updated: &str,
) -> serde_json::Value {
    serde_json::json!({
        "SchemaVersion": "2018-10-08", "Id": id, "GeneratorId": format!("flowlens/{detector}"),
        "AwsAccountId": "123456789012", "Title": format!("{detector} on {id}"),
        "Description": "d", "Severity": {"Label": label, "Normalized": score},
        "FirstObservedAt": start, "LastObservedAt": start, "CreatedAt": "2025-06-02T12:00:00.000Z",
        "UpdatedAt": updated, "Region": "us-east-1",
        "Resources": [{"Type": "AwsEc2NetworkInterface", "Id": "arn:aws:ec2:us-east-1:123456789012:network-interface/eni-1"}],
        "ProductFields": {"flowlens/detector": detector, "flowlens/subject": "eni/eni-1"}
    })
}

#[test]
fn findings_archive_keeps_one_row_per_id_and_sql_is_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let store = ArchiveStore::Local(tmp.path().to_path_buf());
        let v1 = vec![
            finding("a", "lateral-movement", "HIGH", 70, "2025-06-02T10:00:00.000Z", "2025-06-02T12:00:00.000Z"),
            finding("b", "lateral-movement", "HIGH", 75, "2025-06-02T10:05:00.000Z", "2025-06-02T12:00:00.000Z"),
            finding("c", "cross-az-cost", "MEDIUM", 40, "2025-06-03T10:00:00.000Z", "2025-06-02T12:00:00.000Z"),
        ];
        let st = archive::findings::archive(&store, v1.clone()).unwrap();
        assert_eq!((st.added, st.updated, st.unchanged, st.files_written), (3, 0, 0, 2));
        let st = archive::findings::archive(&store, v1).unwrap();
        assert_eq!((st.added, st.updated, st.unchanged, st.files_written), (0, 0, 3, 0));
        // An update of `a` (later UpdatedAt) replaces it; an older copy does not.
        let mut a2 = finding("a", "lateral-movement", "CRITICAL", 90, "2025-06-02T10:00:00.000Z", "2025-06-02T13:00:00.000Z");
        let old = finding("b", "lateral-movement", "LOW", 10, "2025-06-02T10:05:00.000Z", "2025-06-02T11:00:00.000Z");
        let st = archive::findings::archive(&store, vec![a2.clone(), old]).unwrap();
        assert_eq!((st.added, st.updated, st.unchanged), (0, 1, 1));
        a2["Title"] = "x".into();

        let a = Archive::open(tmp.path().to_str().unwrap(), &S3Options::default(), 1).await.unwrap();
        assert_eq!(
            query(&a, "SELECT id, severity, entity_kind, entity, date FROM findings ORDER BY id").await,
            vec![
                vec![V::S("a".into()), V::S("CRITICAL".into()), V::S("eni".into()), V::S("eni-1".into()), V::S("2025-06-02".into())],
                vec![V::S("b".into()), V::S("HIGH".into()), V::S("eni".into()), V::S("eni-1".into()), V::S("2025-06-02".into())],
                vec![V::S("c".into()), V::S("MEDIUM".into()), V::S("eni".into()), V::S("eni-1".into()), V::S("2025-06-03".into())],
            ]
        );
        let by = saved_rows(&a, "FindingsByDetector", &[]).await;
        assert_eq!(by.iter().map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone())).collect::<Vec<_>>(), vec![
            (V::S("lateral-movement".into()), V::S("CRITICAL".into()), V::I(1), V::I(90)),
            (V::S("lateral-movement".into()), V::S("HIGH".into()), V::I(1), V::I(75)),
            (V::S("cross-az-cost".into()), V::S("MEDIUM".into()), V::I(1), V::I(40)),
        ]);
        // Tables without data answer with no rows; every saved query at least plans and runs.
        for q in saved::all() {
            let params: Vec<(String, String)> = q.params.iter().filter(|p| p.default.is_none()).map(|p| (p.name.clone(), "10.0.0.1".into())).collect();
            let sql = q.render(&params).unwrap();
            a.query(&sql).await.unwrap_or_else(|e| panic!("{}: {}", q.name, e.render(&sql)));
        }

        // Read-only, with a clear message; errors name their position.
        for sql in [
            "INSERT INTO findings SELECT * FROM findings",
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/tmp/x'",
            "COPY findings TO '/tmp/out.parquet'",
            "DROP TABLE findings",
            "SET datafusion.execution.batch_size = 1",
            "  -- a comment first\n  delete from findings",
        ] {
            let e = a.query(sql).await.unwrap_err();
            assert!(matches!(e, flowlens_queries::QueryError::ReadOnly { .. }), "{sql}: {e:?}");
            assert!(e.to_string().contains("read-only"), "{e}");
        }
        let e = a.query("SELECT id\nFROM findings WHERE nosuch = 1").await.unwrap_err();
        let p = e.position().unwrap_or_else(|| panic!("no position: {e:?}"));
        assert_eq!((p.line, p.column), (2, 21), "{e:?}");
        let e = a.query("SELECT id FROM findings WHER id = 'a'").await.unwrap_err();
        assert!(e.position().is_some(), "{e:?}");
        assert!(e.render("SELECT id FROM findings WHER id = 'a'").contains('^'));

        // Analyst functions.
        assert_eq!(
            query(&a, "SELECT is_private('10.1.2.3'), is_private('8.8.8.8'), is_public('8.8.8.8'), is_private('nope'), \
                       in_cidr('10.1.2.3', '10.0.0.0/8'), in_cidr('fd00::1', 'fc00::/7'), in_cidr('10.1.2.3', 'bad'), \
                       az_pair('use1-az2', 'use1-az1'), az_pair('use1-az1', 'use1-az1'), \
                       cross_az_cost(1073741824), cross_az_cost(1073741824, 0.02)").await,
            vec![vec![
                V::S("true".into()), V::S("false".into()), V::S("true".into()), V::N,
                V::S("true".into()), V::S("true".into()), V::N,
                V::S("use1-az1 <-> use1-az2".into()), V::N,
                V::S("0.02".into()), V::S("0.04".into()),
            ]]
        );

        // The open session sees what is archived after it: a part rewritten in place
        // (not the statistics or footer it read before) and a new partition.
        let c2 = finding("c", "cross-az-cost", "CRITICAL", 95, "2025-06-03T10:00:00.000Z", "2025-06-03T13:00:00.000Z");
        let d = finding("d", "exfiltration-spike", "HIGH", 80, "2025-06-04T09:00:00.000Z", "2025-06-04T12:00:00.000Z");
        let st = archive::findings::archive(&store, vec![c2, d]).unwrap();
        assert_eq!((st.added, st.updated), (1, 1));
        assert_eq!(
            query(&a, "SELECT id, severity, date FROM findings WHERE date >= '2025-06-03' ORDER BY id").await,
            vec![
                vec![V::S("c".into()), V::S("CRITICAL".into()), V::S("2025-06-03".into())],
                vec![V::S("d".into()), V::S("HIGH".into()), V::S("2025-06-04".into())],
            ]
        );
        assert_eq!(query(&a, "SELECT count(*), max(severity_score) FROM findings").await, vec![vec![V::I(4), V::I(95)]]);
    });
}

//! The terminal UI driven by keys and drawn into ratatui's `TestBackend`: screens as
//! snapshots, navigation, pivots into a real (small) parquet archive, and log strings
//! with terminal escape sequences drawn inert.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringViewArray, new_null_array,
};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use flowlens_dashboards::app::{Action, App, Effect, Load, Screen, Tag};
use flowlens_dashboards::findings::{FindingView, parse_lines};
use flowlens_queries::{Archive, S3Options};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

const HOSTILE_UA: &str = "Mozilla/5.0\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[31mred\u{202e}txt";

fn asff(
    id: &str,
    detector: &str,
    label: &str,
    score: i64,
    subject: &str,
    title: &str,
) -> serde_json::Value {
    json!({
        "SchemaVersion": "2018-10-08", "Id": id, "GeneratorId": format!("flowlens/{detector}"),
        "AwsAccountId": "123456789012", "Title": title,
        "Description": format!("{title}.\nSecond line."),
        "Severity": {"Label": label, "Normalized": score},
        "FirstObservedAt": "2025-06-02T10:00:00.000Z", "LastObservedAt": "2025-06-02T10:10:00.000Z",
        "CreatedAt": "2025-06-02T12:00:00.000Z", "UpdatedAt": "2025-06-02T12:00:00.000Z",
        "Region": "us-east-1",
        "Remediation": {"Recommendation": {"Text": "Check the host."}},
        "Resources": [{"Type": "AwsEc2NetworkInterface", "Id": "arn:aws:ec2:us-east-1:123456789012:network-interface/eni-1"}],
        "ProductFields": {
            "flowlens/detector": detector,
            "flowlens/subject": subject,
            "flowlens/subjects": json!([subject]).to_string(),
            "flowlens/observed/bytes_out": "5000000000 bytes",
            "flowlens/baseline/bytes_out": "20000000 bytes",
            "flowlens/evidence": json!({"columns": ["dstaddr", "bytes"], "rows": [["203.0.113.9", "5000000000"]]}).to_string(),
        }
    })
}

fn findings_file() -> String {
    [
        asff(
            "f1",
            "exfiltration-spike",
            "CRITICAL",
            90,
            "ip/10.0.12.20",
            "10.0.12.20 sent 5.0 GB to the internet",
        ),
        asff(
            "f2",
            "lateral-movement",
            "HIGH",
            75,
            "ip/10.0.11.20",
            "10.0.11.20 swept 30 hosts on 22/445/3389",
        ),
        asff(
            "f3",
            "scraping-bot",
            "MEDIUM",
            50,
            &format!("user_agent/{HOSTILE_UA}"),
            &format!("Crawl by {HOSTILE_UA}"),
        ),
        asff(
            "f4",
            "public-exposure",
            "LOW",
            20,
            "ip/10.0.0.100",
            "10.0.0.100 answered 443 to the internet",
        ),
    ]
    .iter()
    .map(|v| v.to_string())
    .chain(["not json".to_string()])
    .collect::<Vec<_>>()
    .join("\n")
}

fn key(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Action {
    Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn screen(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| flowlens_dashboards::ui::draw(app, f)).unwrap();
    flowlens_dashboards::screen_text(t.backend().buffer())
}

fn app(archive: bool) -> App {
    let loaded = parse_lines(&findings_file());
    assert_eq!(loaded.findings.len(), 4);
    assert_eq!(
        loaded.problems,
        vec!["line 5: not an ASFF finding".to_string()]
    );
    App::new(loaded.findings, archive)
}

#[test]
fn main_screen_snapshot() {
    let a = app(false);
    insta::assert_snapshot!("main_screen", screen(&a, 130, 12));
}

#[test]
fn detail_screen_snapshot() {
    let mut a = app(false);
    a.update(code(KeyCode::Enter));
    assert_eq!(a.screen(), Screen::Detail);
    insta::assert_snapshot!("detail_screen", screen(&a, 100, 30));
}

#[test]
fn help_snapshot() {
    let mut a = app(false);
    a.update(key('?'));
    insta::assert_snapshot!("help", screen(&a, 100, 20));
    a.update(code(KeyCode::Esc));
    assert!(!a.help);
}

#[test]
fn keyboard_navigation_filter_back_and_quit() {
    let mut a = app(false);
    // Sorted by severity: the critical finding first.
    assert_eq!(a.current().unwrap().id, "f1");
    a.update(key('j'));
    assert_eq!(a.current().unwrap().id, "f2");
    a.update(code(KeyCode::Enter));
    assert_eq!(a.screen(), Screen::Detail);
    assert_eq!(a.focused().unwrap().id, "f2");
    a.update(code(KeyCode::Esc));
    assert_eq!(a.screen(), Screen::Findings);
    // Text filter.
    for c in "/swept".chars() {
        a.update(key(c));
    }
    a.update(code(KeyCode::Enter));
    assert_eq!(a.visible.len(), 1);
    assert_eq!(a.current().unwrap().detector, "lateral-movement");
    a.update(code(KeyCode::Esc));
    assert_eq!(a.visible.len(), 4);
    // Minimum severity: >= INFORMATIONAL, LOW, MEDIUM, HIGH.
    for _ in 0..4 {
        a.update(key('s'));
    }
    assert_eq!(a.visible.len(), 2);
    a.update(code(KeyCode::Esc));
    // Detector filter cycles through the detectors present.
    a.update(key('d'));
    assert_eq!(a.detector_filter.as_deref(), Some("exfiltration-spike"));
    assert_eq!(a.visible.len(), 1);
    a.update(code(KeyCode::Esc));
    // Pivots need an archive and say so.
    assert!(a.update(key('p')).is_empty());
    assert!(a.status.contains("no archive"));
    a.update(key('q'));
    assert!(a.quit);
}

#[test]
fn hostile_user_agent_renders_inert() {
    let mut a = app(false);
    let drawn = screen(&a, 160, 12);
    assert!(
        drawn.contains("Crawl by Mozilla/5.0\\u{1b}]0;owned\\u{7}"),
        "{drawn}"
    );
    for c in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!drawn.contains(c), "{c:?} reached the screen");
    }
    // In the buffer itself: no cell holds a control character.
    let mut t = Terminal::new(TestBackend::new(160, 40)).unwrap();
    for _ in 0..2 {
        a.update(key('j'));
    }
    a.update(code(KeyCode::Enter));
    assert_eq!(a.focused().unwrap().id, "f3");
    t.draw(|f| flowlens_dashboards::ui::draw(&a, f)).unwrap();
    for cell in t.backend().buffer().content() {
        assert!(
            cell.symbol().chars().all(|c| !c.is_control()),
            "{:?}",
            cell.symbol()
        );
    }
    let f: &FindingView = a.focused().unwrap();
    assert!(f.entity.contains("\\u{1b}[2J"));
}

/// A tiny archive: a few flows of 10.0.12.20 in the finding's window, written as the
/// archive lays them out.
fn tiny_archive(dir: &std::path::Path) {
    let schema = flowlens_model::flows::schema();
    let n = 3;
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.name().as_str() {
                "srcaddr" => Arc::new(StringViewArray::from(vec![
                    "10.0.12.20",
                    "10.0.12.20",
                    "10.0.1.1",
                ])),
                "dstaddr" => Arc::new(StringViewArray::from(vec![
                    "203.0.113.9",
                    "203.0.113.10",
                    "10.0.12.20",
                ])),
                "interface_id" | "source_object" => {
                    Arc::new(StringViewArray::from(vec!["eni-1"; 3]))
                }
                "action" => Arc::new(StringViewArray::from(vec!["ACCEPT"; 3])),
                "srcport" | "dstport" | "protocol" => {
                    Arc::new(Int32Array::from(vec![443, 443, 22]))
                }
                "bytes" => Arc::new(Int64Array::from(vec![4_000_000_000i64, 1_000_000_000, 500])),
                "packets" => Arc::new(Int64Array::from(vec![10i64, 10, 1])),
                "start" => Arc::new(Int64Array::from(vec![
                    1748858460i64,
                    1748858520,
                    1748858580,
                ])),
                "end" => Arc::new(Int64Array::from(vec![
                    1748858470i64,
                    1748858530,
                    1748858590,
                ])),
                _ => new_null_array(f.data_type(), n),
            }
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let part =
        dir.join("kind=flows/account=123456789012/aws_region=us-east-1/date=2025-06-02/hour=10");
    std::fs::create_dir_all(&part).unwrap();
    let file = std::fs::File::create(part.join("t.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pivot_and_timeline_read_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_archive(tmp.path());
    let archive = Archive::open(tmp.path().to_str().unwrap(), &S3Options::default(), 1)
        .await
        .unwrap();
    let mut a = app(true);
    let effects = a.update(key('p'));
    assert_eq!(a.screen(), Screen::Pivot);
    assert_eq!(a.pivot, Load::Loading);
    let [Effect::Query(Tag::Pivot, sql)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let grid = flowlens_dashboards::run_query(&archive, sql).await.unwrap();
    assert_eq!(grid.rows.len(), 3, "{grid:?}");
    a.update(Action::Loaded(Tag::Pivot, Ok(grid)));
    insta::assert_snapshot!("pivot_screen", screen(&a, 150, 10));
    a.update(code(KeyCode::Esc));
    let effects = a.update(key('t'));
    let [Effect::Query(Tag::Timeline, sql)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let grid = flowlens_dashboards::run_query(&archive, sql).await.unwrap();
    assert_eq!(
        grid.rows,
        vec![vec!["1748858400".to_string(), "5000000500".to_string()]]
    );
    a.update(Action::Loaded(Tag::Timeline, Ok(grid)));
    assert!(screen(&a, 100, 12).contains("peak 5000000500"));
    // The SQL console runs typed queries; errors are shown, not fatal.
    a.update(code(KeyCode::Esc));
    a.update(key(':'));
    for c in "SELECT count(*) AS n FROM flows".chars() {
        a.update(key(c));
    }
    let effects = a.update(code(KeyCode::Enter));
    let [Effect::Query(Tag::Sql, sql)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let grid = flowlens_dashboards::run_query(&archive, sql).await.unwrap();
    assert_eq!(grid.rows, vec![vec!["3".to_string()]]);
    let err = flowlens_dashboards::run_query(&archive, "DROP TABLE flows")
        .await
        .unwrap_err();
    assert!(err.contains("read-only"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_loop_runs_queries_off_the_ui_thread() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_archive(tmp.path());
    let archive = Arc::new(
        Archive::open(tmp.path().to_str().unwrap(), &S3Options::default(), 1)
            .await
            .unwrap(),
    );
    // `q` right after `c`: the loop quits at once, the board's queries still running.
    let mut a = app(true);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(key('c')).await.unwrap();
    tx.send(key('q')).await.unwrap();
    let mut term = Terminal::new(TestBackend::new(120, 20)).unwrap();
    flowlens_dashboards::run(&mut term, &mut a, Some(archive.clone()), rx)
        .await
        .unwrap();
    assert!(a.quit);
    assert_eq!(a.screen(), Screen::Costs);
    assert_eq!(a.costs, Load::Loading);
    // Input ends without `q`: the loop waits for the answers, which arrive as actions.
    let mut a = app(true);
    let text = flowlens_dashboards::run_script(
        &mut a,
        Some(archive),
        flowlens_dashboards::parse_keys("c"),
        120,
        20,
    )
    .await;
    assert!(!a.quit);
    assert!(matches!(a.costs, Load::Ready(_)), "{:?}", a.costs);
    assert!(matches!(a.cost_pairs, Load::Ready(_)), "{:?}", a.cost_pairs);
    assert!(text.contains("dollars by AZ pair"), "{text}");
}

#[test]
fn ten_thousand_findings_scroll_and_filter() {
    let lines: Vec<String> = (0..10_000)
        .map(|i| {
            asff(
                &format!("id-{i:05}"),
                ["exfiltration-spike", "lateral-movement", "cross-az-cost"][i % 3],
                ["LOW", "MEDIUM", "HIGH"][i % 3],
                (i % 100) as i64,
                &format!("ip/10.1.{}.{}", i / 250, i % 250),
                &format!("finding number {i}"),
            )
            .to_string()
        })
        .collect();
    let loaded = parse_lines(&lines.join("\n"));
    assert_eq!(loaded.findings.len(), 10_000);
    let mut a = App::new(loaded.findings, false);
    let first = screen(&a, 120, 20);
    assert!(first.contains("10000 findings (10000 shown)"), "{first}");
    a.update(code(KeyCode::End));
    let last_id = a.current().unwrap().title.clone();
    let drawn = screen(&a, 120, 20);
    assert!(drawn.contains(&last_id), "{drawn}");
    // Moving up inside the page keeps the page; past its top scrolls by one.
    let offset = a.list_offset.get();
    assert!(offset > 9_000, "{offset}");
    a.update(key('k'));
    screen(&a, 120, 20);
    assert_eq!(a.list_offset.get(), offset);
    for c in "/number 4242".chars() {
        a.update(key(c));
    }
    a.update(code(KeyCode::Enter));
    assert_eq!(a.visible.len(), 1);
    assert!(screen(&a, 120, 20).contains("finding number 4242"));
}

#[test]
fn pivot_filters_follow_the_subject() {
    use flowlens_dashboards::app::{flow_filter, pivot_sql, waf_filter};
    let mut v = asff("x", "cross-az-cost", "MEDIUM", 50, "ip/10.0.1.5", "pair");
    v["ProductFields"]["flowlens/subjects"] = json!(["ip/10.0.1.5", "ip/10.0.2.7", "eni/eni-1"])
        .to_string()
        .into();
    let f = FindingView::from_asff(&v).unwrap();
    assert_eq!(
        flow_filter(&f).unwrap(),
        "((srcaddr = '10.0.1.5' AND dstaddr = '10.0.2.7') OR (srcaddr = '10.0.2.7' AND dstaddr = '10.0.1.5'))"
    );
    // Public exposure: the address on its port.
    v["GeneratorId"] = "flowlens/public-exposure".into();
    v["ProductFields"]["flowlens/detector"] = "public-exposure".into();
    v["ProductFields"]["flowlens/subjects"] = json!(["ip/10.0.3.9", "port/8080", "port/x"])
        .to_string()
        .into();
    let f = FindingView::from_asff(&v).unwrap();
    let cond = flow_filter(&f).unwrap();
    assert!(
        cond.ends_with("AND (dstport IN (8080) OR srcport IN (8080))"),
        "{cond}"
    );
    // A distributed crawl: its JA4 fingerprint; a client fingerprint made from the user
    // agent is not in the logs, so its addresses are used.
    v["GeneratorId"] = "flowlens/scraping-bot".into();
    v["ProductFields"]["flowlens/detector"] = "scraping-bot".into();
    v["ProductFields"]["flowlens/subjects"] = json!([
        "fingerprint/t13d1516h2_8daaf6152771_02713d6af862",
        "ip/198.51.100.7"
    ])
    .to_string()
    .into();
    let f = FindingView::from_asff(&v).unwrap();
    assert_eq!(
        waf_filter(&f).unwrap(),
        "(ja4_fingerprint IN ('t13d1516h2_8daaf6152771_02713d6af862') OR ja3_fingerprint IN ('t13d1516h2_8daaf6152771_02713d6af862'))"
    );
    v["ProductFields"]["flowlens/subjects"] =
        json!(["fingerprint/ua:00ff", "ip/198.51.100.7", "ip/198.51.100.8"])
            .to_string()
            .into();
    let f = FindingView::from_asff(&v).unwrap();
    assert_eq!(
        waf_filter(&f).unwrap(),
        "(client_ip IN ('198.51.100.7', '198.51.100.8'))"
    );
    // Hostile values stay string literals.
    v["ProductFields"]["flowlens/subjects"] = json!(["ip/1' OR '1'='1\\"]).to_string().into();
    let f = FindingView::from_asff(&v).unwrap();
    assert_eq!(
        waf_filter(&f).unwrap(),
        "(client_ip IN ('1'' OR ''1''=''1\\'))"
    );
    // Nothing to look up: no pivot.
    v["ProductFields"]["flowlens/subjects"] = json!(["account/123456789012"]).to_string().into();
    v["ProductFields"]["flowlens/subject"] = "account/123456789012".into();
    assert!(pivot_sql(&FindingView::from_asff(&v).unwrap()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_subject_values_are_only_data() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_archive(tmp.path());
    let archive = Archive::open(tmp.path().to_str().unwrap(), &S3Options::default(), 1)
        .await
        .unwrap();
    let mut v = asff("x", "lateral-movement", "HIGH", 80, "ip/x", "t");
    v["ProductFields"]["flowlens/subjects"] =
        json!(["ip/10.0.12.20' OR '1'='1", "ip/a\\' OR 1=1 --"])
            .to_string()
            .into();
    let f = FindingView::from_asff(&v).unwrap();
    let sql = flowlens_dashboards::app::pivot_sql(&f).unwrap();
    let grid = flowlens_dashboards::run_query(&archive, &sql)
        .await
        .unwrap();
    assert!(grid.rows.is_empty(), "{sql}: {grid:?}");
}

//! The UI's state and its one way of changing: `update(action) -> effects`.
//!
//! Keys and finished queries arrive as [`Action`]s; slow work leaves as [`Effect`]s that
//! the event loop runs off the UI thread and answers with [`Action::Loaded`]. Drawing
//! (`ui::draw`) only reads this state.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::findings::{FindingView, severity_rank};

/// Rows and columns of a query result, as display strings (already made inert).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grid {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Something that loads in the background.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Load<T> {
    #[default]
    Idle,
    Loading,
    Ready(T),
    Failed(String),
}

/// What a query result is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Pivot,
    Timeline,
    Costs,
    CostPairs,
    WafClients,
    WafFingerprints,
    Sql,
}

/// The screens, stacked: Esc pops back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Findings,
    Detail,
    Pivot,
    Timeline,
    Costs,
    Waf,
    Sql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Severity,
    Detector,
    Window,
    Entity,
}

impl SortKey {
    fn next(self) -> Self {
        match self {
            SortKey::Severity => SortKey::Detector,
            SortKey::Detector => SortKey::Window,
            SortKey::Window => SortKey::Entity,
            SortKey::Entity => SortKey::Severity,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Severity => "severity",
            SortKey::Detector => "detector",
            SortKey::Window => "window",
            SortKey::Entity => "entity",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Key(KeyEvent),
    Loaded(Tag, Result<Grid, String>),
}

/// Work for the event loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Run this SQL against the archive; answer with `Action::Loaded(tag, ..)`.
    Query(Tag, String),
}

const SEVERITIES: [&str; 5] = ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

pub struct App {
    pub findings: Vec<FindingView>,
    /// Indices into `findings` after filtering and sorting.
    pub visible: Vec<usize>,
    /// Position in `visible`.
    pub selected: usize,
    pub sort: SortKey,
    pub filter: String,
    pub editing_filter: bool,
    pub detector_filter: Option<String>,
    /// Only findings of at least this severity rank (0: all).
    pub min_severity: u8,
    pub stack: Vec<Screen>,
    pub help: bool,
    pub quit: bool,
    /// Whether an archive is open (pivots, charts and SQL need one).
    pub has_archive: bool,
    pub pivot: Load<Grid>,
    pub timeline: Load<Grid>,
    /// Dollars by AZ pair, and the top talker pairs.
    pub costs: Load<Grid>,
    pub cost_pairs: Load<Grid>,
    pub waf_clients: Load<Grid>,
    pub waf_fingerprints: Load<Grid>,
    pub sql_input: String,
    pub sql_result: Load<Grid>,
    /// Scroll offset of the current screen's body.
    pub scroll: usize,
    /// First column shown of a result table (Left/Right, h/l).
    pub hscroll: usize,
    /// Timeline bars on a logarithmic scale (`L`): a spike does not flatten the baseline.
    pub log_scale: bool,
    /// One line for the status bar.
    pub status: String,
    /// The finding the pivot and timeline were loaded for.
    pub focus: Option<usize>,
    /// First row of the findings list on screen (kept by drawing, which knows the
    /// height, so the cursor only scrolls the list at its edges).
    pub list_offset: std::cell::Cell<usize>,
    /// Findings per detector, sorted by detector (the findings never change).
    pub detector_counts: Vec<(String, usize)>,
}

const NO_SUBJECT: &str =
    "this finding names no address, interface or fingerprint to look up in the archive";

/// `'...'` with quotes doubled: a log value as a SQL string literal.
pub fn lit(s: &str) -> String {
    flowlens_queries::saved::text_literal(s)
}

fn date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// Whether a finding is about WAF requests (its evidence lives in the `waf` table).
pub fn is_waf(f: &FindingView) -> bool {
    f.detector == "scraping-bot"
}

/// `col IN (v, ...) OR ...` over SQL literals.
fn any_of(cols: &[&str], values: &[&str]) -> String {
    let list = values.iter().map(|v| lit(v)).collect::<Vec<_>>().join(", ");
    cols.iter()
        .map(|c| format!("{c} IN ({list})"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The flows that belong to a finding's subject: both directions of a cross-AZ pair;
/// else its addresses (also behind NAT), else its interfaces, instances or subnets,
/// narrowed to its ports when it names some (public exposure).
pub fn flow_filter(f: &FindingView) -> Option<String> {
    let ips = f.subjects_of("ip");
    if f.detector == "cross-az-cost" && ips.len() == 2 {
        let (a, b) = (lit(ips[0]), lit(ips[1]));
        return Some(format!(
            "((srcaddr = {a} AND dstaddr = {b}) OR (srcaddr = {b} AND dstaddr = {a}))"
        ));
    }
    let by = [
        (
            "ip",
            &["srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr"][..],
        ),
        ("eni", &["interface_id"][..]),
        ("instance", &["instance_id"][..]),
        ("subnet", &["subnet_id"][..]),
    ];
    let cond = by.iter().find_map(|(kind, cols)| {
        let v = f.subjects_of(kind);
        (!v.is_empty()).then(|| any_of(cols, &v))
    })?;
    let ports: Vec<String> = f
        .subjects_of("port")
        .iter()
        .filter_map(|p| p.parse::<u16>().ok())
        .map(|p| p.to_string())
        .collect();
    Some(if ports.is_empty() {
        format!("({cond})")
    } else {
        let ports = ports.join(", ");
        format!("({cond}) AND (dstport IN ({ports}) OR srcport IN ({ports}))")
    })
}

/// The requests that belong to a WAF finding: its fingerprint when that is its subject
/// (a distributed crawl), else its client addresses.
pub fn waf_filter(f: &FindingView) -> Option<String> {
    if let Some((kind, fp)) = f.subjects.first()
        && kind == "fingerprint"
        && !fp.starts_with("ua:")
    {
        return Some(format!(
            "({})",
            any_of(&["ja4_fingerprint", "ja3_fingerprint"], &[fp])
        ));
    }
    let ips = f.subjects_of("ip");
    (!ips.is_empty()).then(|| format!("({})", any_of(&["client_ip"], &ips)))
}

/// The filter for a finding's own records, if its subject can be found in the logs.
fn subject_filter(f: &FindingView) -> Option<String> {
    if is_waf(f) {
        waf_filter(f)
    } else {
        flow_filter(f)
    }
}

/// The archive rows behind a finding: its subject's flows (or requests) in its window.
pub fn pivot_sql(f: &FindingView) -> Option<String> {
    let cond = subject_filter(f)?;
    let (d0, d1) = (date(f.window_start - 3600), date(f.window_end + 3600));
    Some(if is_waf(f) {
        format!(
            "SELECT \"timestamp\", client_ip, country, http_method, uri, action, terminating_rule_id, user_agent, ja4_fingerprint \
             FROM waf WHERE {cond} AND date BETWEEN '{d0}' AND '{d1}' \
             AND \"timestamp\" >= to_timestamp_seconds({}) AND \"timestamp\" < to_timestamp_seconds({}) \
             ORDER BY \"timestamp\", client_ip LIMIT {MAX_PIVOT_ROWS}",
            f.window_start, f.window_end
        )
    } else {
        format!(
            "SELECT to_timestamp_seconds(start) AS start, interface_id, srcaddr, srcport, dstaddr, dstport, protocol, bytes, packets, action, tcp_flags, flow_direction \
             FROM flows WHERE {cond} AND date BETWEEN '{d0}' AND '{d1}' AND \"end\" >= {} AND start < {} \
             ORDER BY start, bytes DESC, interface_id LIMIT {MAX_PIVOT_ROWS}",
            f.window_start, f.window_end
        )
    })
}

/// Rows a pivot shows at most.
pub const MAX_PIVOT_ROWS: usize = 5000;

/// The subject's traffic in 5-minute buckets, six hours either side of the window
/// (bytes for flows, requests for WAF): `bucket` (unix seconds), value.
pub fn timeline_sql(f: &FindingView) -> Option<String> {
    let cond = subject_filter(f)?;
    let (from, to) = (f.window_start - 6 * 3600, f.window_end + 6 * 3600);
    let (d0, d1) = (date(from), date(to));
    Some(if is_waf(f) {
        format!(
            "SELECT CAST(\"timestamp\" AS BIGINT) / 300000 * 300 AS bucket, count(*) AS requests \
             FROM waf WHERE {cond} AND date BETWEEN '{d0}' AND '{d1}' \
             AND \"timestamp\" >= to_timestamp_seconds({from}) AND \"timestamp\" < to_timestamp_seconds({to}) \
             GROUP BY 1 ORDER BY 1"
        )
    } else {
        format!(
            "SELECT start / 300 * 300 AS bucket, sum(bytes) AS bytes \
             FROM flows WHERE {cond} AND date BETWEEN '{d0}' AND '{d1}' AND start >= {from} AND start < {to} \
             GROUP BY 1 ORDER BY 1"
        )
    })
}

pub const WAF_CLIENTS_SQL: &str = "SELECT client_ip, count(*) AS requests, count(DISTINCT uri) AS uris, \
     sum(CASE WHEN action = 'BLOCK' THEN 1 ELSE 0 END) AS blocked, max(user_agent) AS user_agent \
     FROM waf GROUP BY client_ip ORDER BY requests DESC, client_ip LIMIT 50";
pub const WAF_FINGERPRINTS_SQL: &str = "SELECT ja4_fingerprint, count(*) AS requests, count(DISTINCT client_ip) AS clients, \
     count(DISTINCT uri) AS uris FROM waf WHERE ja4_fingerprint IS NOT NULL \
     GROUP BY ja4_fingerprint ORDER BY requests DESC, ja4_fingerprint LIMIT 50";

impl App {
    pub fn new(findings: Vec<FindingView>, has_archive: bool) -> Self {
        let mut app = App {
            findings,
            visible: Vec::new(),
            selected: 0,
            sort: SortKey::Severity,
            filter: String::new(),
            editing_filter: false,
            detector_filter: None,
            min_severity: 0,
            stack: vec![Screen::Findings],
            help: false,
            quit: false,
            has_archive,
            pivot: Load::Idle,
            timeline: Load::Idle,
            costs: Load::Idle,
            cost_pairs: Load::Idle,
            list_offset: std::cell::Cell::new(0),
            detector_counts: Vec::new(),
            waf_clients: Load::Idle,
            waf_fingerprints: Load::Idle,
            sql_input: String::new(),
            sql_result: Load::Idle,
            scroll: 0,
            hscroll: 0,
            log_scale: false,
            status: String::new(),
            focus: None,
        };
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for f in &app.findings {
            *counts.entry(f.detector.clone()).or_default() += 1;
        }
        app.detector_counts = counts.into_iter().collect();
        app.refresh();
        app
    }

    pub fn screen(&self) -> Screen {
        *self.stack.last().unwrap_or(&Screen::Findings)
    }

    /// The finding under the cursor.
    pub fn current(&self) -> Option<&FindingView> {
        self.visible.get(self.selected).map(|&i| &self.findings[i])
    }

    /// The finding a pivot or timeline belongs to (else the one under the cursor).
    pub fn focused(&self) -> Option<&FindingView> {
        self.focus
            .map(|i| &self.findings[i])
            .or_else(|| self.current())
    }

    /// Distinct detectors, sorted.
    pub fn detectors(&self) -> Vec<String> {
        self.detector_counts
            .iter()
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// Recomputes `visible` from the filters and the sort key, keeping the selection on
    /// the same finding when it is still visible.
    pub fn refresh(&mut self) {
        let keep = self.visible.get(self.selected).copied();
        let needle = self.filter.to_lowercase();
        let mut v: Vec<usize> = (0..self.findings.len())
            .filter(|&i| {
                let f = &self.findings[i];
                severity_rank(&f.severity) >= self.min_severity
                    && self
                        .detector_filter
                        .as_ref()
                        .is_none_or(|d| &f.detector == d)
                    && (needle.is_empty()
                        || [&f.title, &f.entity, &f.detector, &f.severity, &f.id]
                            .iter()
                            .any(|s| s.to_lowercase().contains(&needle)))
            })
            .collect();
        let f = &self.findings;
        match self.sort {
            SortKey::Severity => v.sort_by(|&a, &b| {
                (f[b].score, &f[a].detector, f[a].window_start).cmp(&(
                    f[a].score,
                    &f[b].detector,
                    f[b].window_start,
                ))
            }),
            SortKey::Detector => v.sort_by(|&a, &b| {
                (&f[a].detector, std::cmp::Reverse(f[a].score))
                    .cmp(&(&f[b].detector, std::cmp::Reverse(f[b].score)))
            }),
            SortKey::Window => {
                v.sort_by_key(|&i| (f[i].window_start, std::cmp::Reverse(f[i].score)))
            }
            SortKey::Entity => v.sort_by(|&a, &b| f[a].entity.cmp(&f[b].entity)),
        }
        self.visible = v;
        self.selected = keep
            .and_then(|k| self.visible.iter().position(|&i| i == k))
            .unwrap_or(0);
    }

    fn push(&mut self, s: Screen) {
        self.stack.push(s);
        self.scroll = 0;
        self.hscroll = 0;
    }

    fn needs_archive(&mut self) -> bool {
        if !self.has_archive {
            self.status =
                "no archive: start with --data ARCHIVE (what `flowlens archive` wrote)".into();
        }
        self.has_archive
    }

    fn open_pivot(&mut self) -> Vec<Effect> {
        self.open_finding_query(Screen::Pivot, Tag::Pivot, pivot_sql)
    }

    fn open_timeline(&mut self) -> Vec<Effect> {
        self.open_finding_query(Screen::Timeline, Tag::Timeline, timeline_sql)
    }

    /// Opens a screen whose rows come from one query about the finding under the cursor.
    fn open_finding_query(
        &mut self,
        screen: Screen,
        tag: Tag,
        sql: fn(&FindingView) -> Option<String>,
    ) -> Vec<Effect> {
        let Some(f) = self.current() else {
            return vec![];
        };
        let sql = sql(f);
        if !self.needs_archive() {
            return vec![];
        }
        let Some(sql) = sql else {
            self.status = NO_SUBJECT.into();
            return vec![];
        };
        self.focus = self.visible.get(self.selected).copied();
        *self.slot(tag) = Load::Loading;
        self.push(screen);
        vec![Effect::Query(tag, sql)]
    }

    /// A saved query with its defaults (and `params`) for a board.
    fn saved(&mut self, tag: Tag, name: &str, params: &[(&str, &str)]) -> Option<Effect> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let rendered = flowlens_queries::saved::find(name)
            .ok_or_else(|| format!("no saved query {name}"))
            .and_then(|q| q.render(&params).map_err(|e| e.to_string()));
        match rendered {
            Ok(sql) => Some(Effect::Query(tag, sql)),
            Err(e) => {
                *self.slot(tag) = Load::Failed(e);
                None
            }
        }
    }

    fn open_costs(&mut self) -> Vec<Effect> {
        if !self.needs_archive() {
            return vec![];
        }
        self.push(Screen::Costs);
        let mut out = Vec::new();
        for (tag, name, params) in [
            (Tag::Costs, "CrossAzByAzPair", &[][..]),
            (Tag::CostPairs, "CrossAzByPair", &[("limit", "200")][..]),
        ] {
            if *self.slot(tag) == Load::Idle {
                *self.slot(tag) = Load::Loading;
                out.extend(self.saved(tag, name, params));
            }
        }
        out
    }

    fn open_waf(&mut self) -> Vec<Effect> {
        if !self.needs_archive() {
            return vec![];
        }
        self.push(Screen::Waf);
        let mut out = Vec::new();
        if self.waf_clients == Load::Idle {
            self.waf_clients = Load::Loading;
            out.push(Effect::Query(Tag::WafClients, WAF_CLIENTS_SQL.into()));
        }
        if self.waf_fingerprints == Load::Idle {
            self.waf_fingerprints = Load::Loading;
            out.push(Effect::Query(
                Tag::WafFingerprints,
                WAF_FINGERPRINTS_SQL.into(),
            ));
        }
        out
    }

    /// Where the result of a query with this tag goes.
    pub fn slot(&mut self, tag: Tag) -> &mut Load<Grid> {
        match tag {
            Tag::Pivot => &mut self.pivot,
            Tag::Timeline => &mut self.timeline,
            Tag::Costs => &mut self.costs,
            Tag::CostPairs => &mut self.cost_pairs,
            Tag::WafClients => &mut self.waf_clients,
            Tag::WafFingerprints => &mut self.waf_fingerprints,
            Tag::Sql => &mut self.sql_result,
        }
    }

    fn move_by(&mut self, delta: isize) {
        match self.screen() {
            Screen::Findings => {
                let n = self.visible.len();
                if n > 0 {
                    self.selected =
                        (self.selected as isize + delta).clamp(0, n as isize - 1) as usize;
                }
            }
            _ => self.scroll = (self.scroll as isize + delta).max(0) as usize,
        }
    }

    /// Applies one action; returns the work it starts.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Loaded(tag, result) => {
                *self.slot(tag) = match result {
                    Ok(g) => Load::Ready(g),
                    Err(e) => Load::Failed(e),
                };
                vec![]
            }
            Action::Key(k) => self.key(k),
        }
    }

    fn key(&mut self, k: KeyEvent) -> Vec<Effect> {
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            self.quit = true;
            return vec![];
        }
        if self.help {
            if matches!(
                k.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
            ) {
                self.help = false;
            }
            return vec![];
        }
        if self.editing_filter {
            match k.code {
                KeyCode::Esc => {
                    self.editing_filter = false;
                    self.filter.clear();
                }
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if !c.is_control() => self.filter.push(c),
                _ => {}
            }
            self.refresh();
            return vec![];
        }
        if self.screen() == Screen::Sql {
            match k.code {
                KeyCode::Esc => {
                    self.stack.pop();
                }
                KeyCode::Enter if !self.sql_input.trim().is_empty() => {
                    self.sql_result = Load::Loading;
                    self.scroll = 0;
                    let sql = match self.sql_input.trim().strip_prefix("\\r ") {
                        Some(name) => match flowlens_queries::saved::find(name.trim()) {
                            Some(q) => match q.render(&[]) {
                                Ok(sql) => sql,
                                Err(e) => {
                                    self.sql_result = Load::Failed(e.to_string());
                                    return vec![];
                                }
                            },
                            None => {
                                self.sql_result =
                                    Load::Failed(format!("no saved query `{}`", name.trim()));
                                return vec![];
                            }
                        },
                        None => self.sql_input.clone(),
                    };
                    return vec![Effect::Query(Tag::Sql, sql)];
                }
                KeyCode::Backspace => {
                    self.sql_input.pop();
                }
                KeyCode::Down => self.scroll += 1,
                KeyCode::Up => self.scroll = self.scroll.saturating_sub(1),
                KeyCode::PageDown => self.scroll += 20,
                KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(20),
                KeyCode::Right => self.hscroll += 1,
                KeyCode::Left => self.hscroll = self.hscroll.saturating_sub(1),
                KeyCode::Char(c) if !c.is_control() => self.sql_input.push(c),
                _ => {}
            }
            return vec![];
        }
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Esc => {
                if self.stack.len() > 1 {
                    self.stack.pop();
                    self.scroll = 0;
                    self.hscroll = 0;
                } else if !self.filter.is_empty()
                    || self.detector_filter.is_some()
                    || self.min_severity > 0
                {
                    self.filter.clear();
                    self.detector_filter = None;
                    self.min_severity = 0;
                    self.refresh();
                }
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::PageDown => self.move_by(20),
            KeyCode::PageUp => self.move_by(-20),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(-(isize::MAX / 2)),
            KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX / 2),
            KeyCode::Enter if self.screen() == Screen::Findings && self.current().is_some() => {
                self.focus = self.visible.get(self.selected).copied();
                self.push(Screen::Detail);
            }
            KeyCode::Char('/') if self.screen() == Screen::Findings => self.editing_filter = true,
            KeyCode::Char('d') if self.screen() == Screen::Findings => {
                let ds = self.detectors();
                self.detector_filter = match &self.detector_filter {
                    None => ds.first().cloned(),
                    Some(cur) => ds
                        .iter()
                        .position(|d| d == cur)
                        .and_then(|i| ds.get(i + 1).cloned()),
                };
                self.refresh();
            }
            KeyCode::Char('s') if self.screen() == Screen::Findings => {
                self.min_severity = (self.min_severity + 1) % (SEVERITIES.len() as u8 + 1);
                self.refresh();
            }
            KeyCode::Char('o') if self.screen() == Screen::Findings => {
                self.sort = self.sort.next();
                self.refresh();
            }
            KeyCode::Char('p') if matches!(self.screen(), Screen::Findings | Screen::Detail) => {
                return self.open_pivot();
            }
            KeyCode::Char('t') if matches!(self.screen(), Screen::Findings | Screen::Detail) => {
                return self.open_timeline();
            }
            KeyCode::Right | KeyCode::Char('l') if self.screen() != Screen::Findings => {
                self.hscroll += 1;
            }
            KeyCode::Left | KeyCode::Char('h') if self.screen() != Screen::Findings => {
                self.hscroll = self.hscroll.saturating_sub(1);
            }
            KeyCode::Char('L') if self.screen() == Screen::Timeline => {
                self.log_scale = !self.log_scale;
            }
            KeyCode::Char('c') => return self.open_costs(),
            KeyCode::Char('w') => return self.open_waf(),
            KeyCode::Char(':') if self.needs_archive() => self.push(Screen::Sql),
            _ => {}
        }
        vec![]
    }

    /// The minimum-severity filter as a label (`all`, `>= MEDIUM`).
    pub fn severity_filter_label(&self) -> String {
        match self.min_severity {
            0 => "all".into(),
            n => format!(">= {}", SEVERITIES[n as usize - 1]),
        }
    }
}

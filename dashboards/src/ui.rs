//! Drawing: a pure function of the [`App`] state.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap,
};

use crate::app::{App, Grid, Load, Screen};
use crate::text;

fn time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn severity_style(label: &str) -> Style {
    match label {
        "CRITICAL" => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        "HIGH" => Style::new().fg(Color::LightRed),
        "MEDIUM" => Style::new().fg(Color::Yellow),
        "LOW" => Style::new().fg(Color::Cyan),
        _ => Style::new().fg(Color::DarkGray),
    }
}

/// Draws the whole screen.
pub fn draw(app: &App, f: &mut Frame) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(app, f, header);
    match app.screen() {
        Screen::Findings => draw_findings(app, f, body),
        Screen::Detail => draw_detail(app, f, body),
        Screen::Pivot => draw_grid_screen(app, f, body, &pivot_title(app), &app.pivot),
        Screen::Timeline => draw_timeline(app, f, body),
        Screen::Costs => draw_costs(app, f, body),
        Screen::Waf => draw_waf(app, f, body),
        Screen::Sql => draw_sql(app, f, body),
    }
    draw_footer(app, f, footer);
    if app.help {
        draw_help(f, body);
    }
}

fn draw_header(app: &App, f: &mut Frame, area: Rect) {
    let mut counts: Vec<Span> = vec![
        Span::raw(format!(
            " flowlens  {} findings ({} shown)  ",
            app.findings.len(),
            app.visible.len()
        ))
        .bold(),
    ];
    for (d, n) in &app.detector_counts {
        let style = if app.detector_filter.as_deref() == Some(d.as_str()) {
            Style::new().reversed()
        } else {
            Style::new()
        };
        counts.push(Span::styled(format!("{d} {n}"), style));
        counts.push(Span::raw("  "));
    }
    let filters = Line::from(vec![
        Span::raw(" filter: "),
        Span::styled(
            if app.filter.is_empty() && !app.editing_filter {
                "-".to_string()
            } else {
                format!(
                    "{}{}",
                    app.filter,
                    if app.editing_filter { "_" } else { "" }
                )
            },
            Style::new().fg(Color::Yellow),
        ),
        Span::raw(format!(
            "   severity: {}   detector: {}   sort: {}",
            app.severity_filter_label(),
            app.detector_filter.as_deref().unwrap_or("all"),
            app.sort.label()
        )),
    ]);
    f.render_widget(Paragraph::new(vec![Line::from(counts), filters]), area);
}

fn draw_footer(app: &App, f: &mut Frame, area: Rect) {
    let hints = match app.screen() {
        Screen::Findings => {
            "Enter detail  p pivot  t timeline  c costs  w WAF  : SQL  / filter  d detector  s severity  o sort  ? help  q quit"
        }
        Screen::Detail => "p pivot to the archive  t timeline  j/k scroll  Esc back  ? help",
        Screen::Sql => {
            "type a query (\\r NAME runs a saved one)  Enter run  ↑/↓ rows  ←/→ columns  Esc back"
        }
        Screen::Timeline => "L log/linear scale  Esc back  ? help  q quit",
        _ => "j/k rows  h/l columns  Esc back  ? help  q quit",
    };
    let line = if app.status.is_empty() {
        Line::from(hints).dark_gray()
    } else {
        Line::from(vec![
            Span::raw(text::cell(&app.status)).yellow(),
            Span::raw("   "),
            Span::raw(hints).dark_gray(),
        ])
    };
    f.render_widget(Paragraph::new(line), area);
}

fn draw_findings(app: &App, f: &mut Frame, area: Rect) {
    // Only the rows on screen are built: the list stays fast with many findings.
    let fit = usize::from(area.height.saturating_sub(2)).max(1);
    let n = app.visible.len();
    let mut offset = app.list_offset.get().min(n.saturating_sub(fit));
    if app.selected < offset {
        offset = app.selected;
    } else if app.selected >= offset + fit {
        offset = app.selected + 1 - fit;
    }
    app.list_offset.set(offset);
    let rows = app.visible.iter().skip(offset).take(fit).map(|&i| {
        let x = &app.findings[i];
        Row::new(vec![
            Cell::from(x.severity.clone()).style(severity_style(&x.severity)),
            Cell::from(x.score.to_string()),
            Cell::from(x.detector.clone()),
            Cell::from(x.entity.clone()),
            Cell::from(format!(
                "{} +{}m",
                time(x.window_start),
                (x.window_end - x.window_start) / 60
            )),
            Cell::from(x.title.clone()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(13),
            Constraint::Length(5),
            Constraint::Length(18),
            Constraint::Length(24),
            Constraint::Length(17),
            Constraint::Min(20),
        ],
    )
    .header(
        Row::new([
            "SEVERITY",
            "SCORE",
            "DETECTOR",
            "ENTITY",
            "WINDOW (UTC)",
            "TITLE",
        ])
        .bold(),
    )
    .row_highlight_style(Style::new().reversed())
    .block(Block::new().borders(Borders::TOP));
    let mut state = TableState::default().with_selected((n > 0).then(|| app.selected - offset));
    f.render_stateful_widget(table, area, &mut state);
    if n == 0 {
        let msg = if app.findings.is_empty() {
            "No findings in this file."
        } else {
            "No finding matches the filters (Esc clears them)."
        };
        f.render_widget(
            Paragraph::new(msg).dark_gray(),
            area.inner(ratatui::layout::Margin::new(1, 2)),
        );
    }
}

fn kv(k: &str, v: String) -> Line<'static> {
    Line::from(vec![
        Span::raw(format!("{k:<14}")).dark_gray(),
        Span::raw(v),
    ])
}

fn draw_detail(app: &App, f: &mut Frame, area: Rect) {
    let Some(x) = app.focused() else { return };
    let mut lines: Vec<Line> = vec![
        Line::from(x.title.clone()).bold(),
        Line::raw(""),
        kv("severity", format!("{} ({})", x.severity, x.score)),
        kv("detector", x.detector.clone()),
        kv("entity", format!("{} {}", x.entity_kind, x.entity)),
        kv(
            "window",
            format!("{} → {} UTC", time(x.window_start), time(x.window_end)),
        ),
        kv("account", format!("{} {}", x.account, x.region)),
        kv("id", x.id.clone()),
        Line::raw(""),
    ];
    lines.extend(x.description.lines().map(|l| Line::raw(l.to_string())));
    lines.push(Line::raw(""));
    for (heading, measures) in [("Observed", &x.observed), ("Baseline", &x.baseline)] {
        if measures.is_empty() {
            continue;
        }
        lines.push(Line::from(heading).bold());
        for (name, value) in measures.iter() {
            lines.push(Line::raw(format!("  {name:<28} {}", measure(value))));
        }
        lines.push(Line::raw(""));
    }
    lines.push(Line::from("Evidence").bold());
    // Aligned columns (each at most 40 characters wide).
    let ncols = x
        .evidence_rows
        .iter()
        .map(Vec::len)
        .chain([x.evidence_columns.len()])
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..ncols)
        .map(|i| {
            x.evidence_rows
                .iter()
                .chain([&x.evidence_columns])
                .map(|r| r.get(i).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
                .min(40)
        })
        .collect();
    let row_line = |r: &[String]| {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(s, &w)| {
                let s: String = s.chars().take(w).collect();
                format!("{s:<w$}")
            })
            .collect();
        format!("  {}", cells.join("  ").trim_end())
    };
    if !x.evidence_columns.is_empty() {
        lines.push(Line::raw(row_line(&x.evidence_columns)).dark_gray());
    }
    for r in &x.evidence_rows {
        lines.push(Line::raw(row_line(r)));
    }
    if x.evidence_rows.is_empty() {
        lines.push(Line::raw("  (none recorded)").dark_gray());
    }
    lines.push(Line::raw(""));
    lines.push(Line::from("Next step").bold());
    lines.extend(x.recommendation.lines().map(|l| Line::raw(l.to_string())));
    if !x.resources.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::from("Resources").bold());
        lines.extend(x.resources.iter().map(|r| Line::raw(format!("  {r}"))));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.scroll.min(u16::MAX as usize) as u16, 0))
            .block(Block::new().borders(Borders::TOP).title(" finding ")),
        area,
    );
}

fn pivot_title(app: &App) -> String {
    app.focused()
        .map(|x| {
            format!(
                " archive rows for {} in {} → {} ",
                x.entity,
                time(x.window_start),
                time(x.window_end)
            )
        })
        .unwrap_or_default()
}

/// The columns that fit `width` from `first` on, each at its natural width (at most 48).
fn fit_columns(g: &Grid, first: usize, width: u16) -> Vec<(usize, u16)> {
    let mut out = Vec::new();
    let mut used = 0u16;
    for (i, c) in g.columns.iter().enumerate().skip(first) {
        let natural = g
            .rows
            .iter()
            .take(200)
            .map(|r| r.get(i).map_or(0, |s| s.chars().count()))
            .max()
            .unwrap_or(0)
            .max(c.chars().count())
            .clamp(3, 48) as u16;
        let gap = u16::from(!out.is_empty());
        if used + gap + natural > width {
            if out.is_empty() {
                out.push((i, width));
            }
            break;
        }
        used += gap + natural;
        out.push((i, natural));
    }
    out
}

fn grid_table<'a>(g: &'a Grid, scroll: usize, cols: &[(usize, u16)], height: u16) -> Table<'a> {
    let pick = |r: &'a [String]| -> Row<'a> {
        Row::new(
            cols.iter()
                .map(|&(i, _)| Cell::from(r.get(i).map_or("", String::as_str))),
        )
    };
    let rows = g
        .rows
        .iter()
        .skip(scroll)
        .take(usize::from(height))
        .map(|r| pick(r));
    Table::new(rows, cols.iter().map(|&(_, w)| Constraint::Length(w)))
        .header(pick(&g.columns).bold())
}

fn draw_load(f: &mut Frame, area: Rect, title: &str, load: &Load<Grid>, scroll: usize) {
    draw_load_h(f, area, title, load, scroll, 0);
}

/// A query result: loading, failed, or its rows from `scroll` and columns from `hscroll`.
fn draw_load_h(
    f: &mut Frame,
    area: Rect,
    title: &str,
    load: &Load<Grid>,
    scroll: usize,
    hscroll: usize,
) {
    let block = Block::new().borders(Borders::TOP).title(title.to_string());
    match load {
        Load::Idle => f.render_widget(Paragraph::new("").block(block), area),
        Load::Loading => f.render_widget(Paragraph::new("Loading…").dark_gray().block(block), area),
        Load::Failed(e) => f.render_widget(
            Paragraph::new(text::inert_block(e))
                .red()
                .wrap(Wrap { trim: false })
                .block(block),
            area,
        ),
        Load::Ready(g) if g.rows.is_empty() => {
            f.render_widget(Paragraph::new("No rows.").dark_gray().block(block), area)
        }
        Load::Ready(g) => {
            let shown = scroll.min(g.rows.len().saturating_sub(1));
            let first = hscroll.min(g.columns.len().saturating_sub(1));
            let cols = fit_columns(g, first, area.width);
            let more_cols = if first > 0 || cols.len() < g.columns.len() {
                format!(
                    ", columns {}–{} of {} (←/→)",
                    first + 1,
                    first + cols.len(),
                    g.columns.len()
                )
            } else {
                String::new()
            };
            let title = format!(
                "{title}(rows {}–{} of {}{}{more_cols}) ",
                shown + 1,
                (shown + usize::from(area.height.saturating_sub(2))).min(g.rows.len()),
                g.rows.len(),
                if g.rows.len() >= crate::MAX_ROWS {
                    ", capped"
                } else {
                    ""
                }
            );
            f.render_widget(
                grid_table(g, shown, &cols, area.height)
                    .block(Block::new().borders(Borders::TOP).title(title)),
                area,
            );
        }
    }
}

fn draw_grid_screen(app: &App, f: &mut Frame, area: Rect, title: &str, load: &Load<Grid>) {
    draw_load_h(f, area, title, load, app.scroll, app.hscroll);
}

fn draw_timeline(app: &App, f: &mut Frame, area: Rect) {
    let Some(x) = app.focused() else { return };
    let unit = if crate::app::is_waf(x) {
        "requests"
    } else {
        "bytes"
    };
    let title = format!(
        " {unit} of {} around its window (▲), {} scale (L toggles) ",
        x.entity,
        if app.log_scale { "log" } else { "linear" }
    );
    let block = Block::new().borders(Borders::TOP).title(title);
    let Load::Ready(g) = &app.timeline else {
        return draw_load(f, area, " timeline ", &app.timeline, 0);
    };
    let points: Vec<(i64, u64)> = g
        .rows
        .iter()
        .filter_map(|r| Some((r.first()?.parse().ok()?, r.get(1)?.parse().ok()?)))
        .collect();
    if points.is_empty() {
        return f.render_widget(
            Paragraph::new("No traffic in the archive for this entity.")
                .dark_gray()
                .block(block),
            area,
        );
    }
    // 5-minute buckets from the first record (or the window) to the last, gaps as zero,
    // merged so that the whole range fits the width.
    const STEP: i64 = 300;
    let from = points[0]
        .0
        .min(x.window_start - x.window_start.rem_euclid(STEP));
    let to = (points[points.len() - 1].0 + STEP).max(x.window_end);
    let n = usize::try_from((to - from + STEP - 1) / STEP)
        .unwrap_or(1)
        .max(1);
    let mut buckets = vec![0u64; n];
    for &(t, v) in &points {
        if let Ok(i) = usize::try_from((t - from) / STEP)
            && i < n
        {
            buckets[i] += v;
        }
    }
    let cols = usize::from(area.width.max(1));
    let per = n.div_ceil(cols);
    let merged: Vec<(i64, u64)> = buckets
        .chunks(per)
        .enumerate()
        .map(|(i, c)| (from + (i * per) as i64 * STEP, c.iter().sum()))
        .collect();
    let bar_width = (cols / merged.len()).clamp(1, 6) as u16;
    let span = per as i64 * STEP;
    let inside = |t: i64| t + span > x.window_start && t < x.window_end;
    // Log scale: from just below the smallest non-zero bucket, so the baseline shows.
    let floor = merged
        .iter()
        .map(|p| p.1)
        .filter(|&v| v > 0)
        .min()
        .map_or(0.0, |v| (v as f64).ln() - 1.0);
    let scaled = |v: u64| {
        if !app.log_scale {
            v
        } else if v == 0 {
            0
        } else {
            (((v as f64).ln() - floor).max(0.0) * 1000.0) as u64
        }
    };
    let bars: Vec<Bar> = merged
        .iter()
        .map(|&(t, v)| {
            Bar::default()
                .value(scaled(v))
                .text_value(String::new())
                .style(if inside(t) {
                    Style::new().red()
                } else {
                    Style::new().blue()
                })
        })
        .collect();
    let marks: String = merged
        .iter()
        .flat_map(|&(t, _)| {
            std::iter::repeat_n(if inside(t) { '▲' } else { ' ' }, usize::from(bar_width))
        })
        .collect();
    let (peak_t, peak) = merged
        .iter()
        .copied()
        .max_by_key(|p| p.1)
        .unwrap_or((from, 0));
    let mut outside: Vec<u64> = merged
        .iter()
        .filter(|p| !inside(p.0))
        .map(|p| p.1)
        .collect();
    outside.sort_unstable();
    let median = outside.get(outside.len() / 2).copied().unwrap_or(0);
    let [chart, mark, legend] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(
        BarChart::default()
            .block(block)
            .data(BarGroup::default().bars(&bars))
            .bar_width(bar_width)
            .bar_gap(0),
        chart,
    );
    f.render_widget(Paragraph::new(marks).red(), mark);
    let amount = |v: u64| {
        if unit == "bytes" {
            format!("{v} bytes ({})", human_bytes(v as f64))
        } else {
            format!("{v} requests")
        }
    };
    f.render_widget(
        Paragraph::new(format!(
            " {} … {} UTC, {} min per bar   peak {} at {}   median outside the window {}",
            time(from),
            time(to),
            span / 60,
            amount(peak),
            time(peak_t),
            amount(median)
        ))
        .dark_gray(),
        legend,
    );
}

fn draw_costs(app: &App, f: &mut Frame, area: Rect) {
    let by_pair = match &app.costs {
        Load::Ready(g) => {
            let col = |n: &str| g.columns.iter().position(|c| c == n);
            let (Some(pair), Some(usd), Some(bytes)) = (col("az_pair"), col("usd"), col("bytes"))
            else {
                return draw_load(f, area, " cross-AZ cost ", &app.costs, app.scroll);
            };
            g.rows
                .iter()
                .map(|r| {
                    let num =
                        |i: usize| r.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
                    (
                        r.get(pair).cloned().unwrap_or_default(),
                        num(usd),
                        num(bytes),
                    )
                })
                .collect::<Vec<_>>()
        }
        other => {
            let [top, bottom] =
                Layout::vertical([Constraint::Length(4), Constraint::Min(3)]).areas(area);
            draw_load(f, top, " dollars by AZ pair ", other, 0);
            return draw_load(f, bottom, " top talker pairs ", &app.cost_pairs, app.scroll);
        }
    };
    let shown = by_pair.len().min(8);
    let [top, bottom] = Layout::vertical([
        Constraint::Length(shown.max(1) as u16 + 1),
        Constraint::Min(3),
    ])
    .areas(area);
    let max = by_pair.iter().map(|p| p.1).fold(1e-9, f64::max);
    let total: f64 = by_pair.iter().map(|p| p.1).sum();
    let lines: Vec<Line> = if by_pair.is_empty() {
        vec![Line::raw(" No traffic crossed Availability Zones.").dark_gray()]
    } else {
        by_pair
            .iter()
            .take(shown)
            .map(|(p, usd, bytes)| {
                let bar = "█".repeat(((usd / max) * 30.0).round() as usize);
                Line::raw(format!(
                    " {p:<26} {:>11}  {:>10}  {bar}",
                    dollars(*usd),
                    human_bytes(*bytes)
                ))
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::TOP).title(format!(
            " dollars by AZ pair, archived period (total ${total:.2}) "
        ))),
        top,
    );
    draw_load_h(
        f,
        bottom,
        " top talker pairs ",
        &app.cost_pairs,
        app.scroll,
        app.hscroll,
    );
}

/// A measure as ASFF carries it (`4003959770 bytes`, `99.357 score`), for reading:
/// at most two decimals, and bytes also in KB/MB/GB.
fn measure(v: &str) -> String {
    let (num, unit) = v.split_once(' ').unwrap_or((v, ""));
    let Ok(n) = num.parse::<f64>() else {
        return v.to_string();
    };
    let shown = if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n:.2}")
    };
    match unit {
        "bytes" if n.abs() >= 1000.0 => format!("{shown} bytes ({})", human_bytes(n)),
        "usd" => dollars(n),
        "" => shown,
        u => format!("{shown} {u}"),
    }
}

/// Dollars: cents, or four decimals below a cent.
fn dollars(usd: f64) -> String {
    if usd != 0.0 && usd.abs() < 0.01 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

fn draw_waf(app: &App, f: &mut Frame, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    draw_load(f, left, " top clients ", &app.waf_clients, app.scroll);
    draw_load(
        f,
        right,
        " top JA4 fingerprints ",
        &app.waf_fingerprints,
        app.scroll,
    );
}

fn draw_sql(app: &App, f: &mut Frame, area: Rect) {
    let [input, result] = Layout::vertical([Constraint::Length(3), Constraint::Min(3)]).areas(area);
    f.render_widget(
        Paragraph::new(format!("{}_", app.sql_input))
            .wrap(Wrap { trim: false })
            .block(
                Block::new()
                    .borders(Borders::ALL)
                    .title(" SQL (tables flows, waf, findings) "),
            ),
        input,
    );
    draw_load_h(
        f,
        result,
        " result ",
        &app.sql_result,
        app.scroll,
        app.hscroll,
    );
}

const HELP: &[(&str, &str)] = &[
    ("j / k, ↑ / ↓", "move, or scroll rows"),
    ("PgUp / PgDn, g / G", "page, top, bottom"),
    ("h / l, ← / →", "scroll a result's columns"),
    ("Enter", "detail: evidence, observed vs baseline, next step"),
    ("p", "pivot: the subject's flows or requests in the window"),
    ("t", "timeline: the subject's traffic around the window"),
    ("L", "timeline: log or linear scale"),
    ("c", "cross-AZ cost board"),
    ("w", "WAF clients and fingerprints board"),
    (":", "SQL console (\\r NAME runs a saved query)"),
    ("/", "filter by text (Enter keeps, Esc clears)"),
    ("d / s / o", "cycle detector filter, minimum severity, sort"),
    ("Esc", "back (on the list: clear the filters)"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit"),
];

fn draw_help(f: &mut Frame, area: Rect) {
    let w = 76.min(area.width);
    let h = (HELP.len() as u16 + 2).min(area.height);
    let popup = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| Line::from(vec![Span::raw(format!(" {k:<20}")).bold(), Span::raw(*v)]))
        .collect();
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}

//! Drawing: a pure function of the [`App`] state.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap,
};

use crate::app::{App, Grid, Load, Screen};

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
        Screen::Pivot => draw_grid_screen(f, body, &pivot_title(app), &app.pivot, app.scroll),
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
    let mut counts: Vec<Span> = vec![Span::raw(format!(
        " flowlens  {} findings ({} shown)  ",
        app.findings.len(),
        app.visible.len()
    ))
    .bold()];
    for d in app.detectors() {
        let n = app.findings.iter().filter(|x| x.detector == d).count();
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
                format!("{}{}", app.filter, if app.editing_filter { "_" } else { "" })
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
        Screen::Findings => "Enter detail  p pivot  t timeline  c costs  w WAF  : SQL  / filter  d detector  s severity  o sort  ? help  q quit",
        Screen::Detail => "p pivot to the archive  t timeline  j/k scroll  Esc back  ? help",
        Screen::Sql => "type a query (\\r NAME runs a saved one)  Enter run  Up/Down scroll  Esc back",
        _ => "j/k scroll  Esc back  ? help  q quit",
    };
    let line = if app.status.is_empty() {
        Line::from(hints).dark_gray()
    } else {
        Line::from(vec![Span::raw(app.status.as_str()).yellow(), Span::raw("   "), Span::raw(hints).dark_gray()])
    };
    f.render_widget(Paragraph::new(line), area);
}

fn draw_findings(app: &App, f: &mut Frame, area: Rect) {
    let rows = app.visible.iter().map(|&i| {
        let x = &app.findings[i];
        Row::new(vec![
            Cell::from(x.severity.clone()).style(severity_style(&x.severity)),
            Cell::from(x.score.to_string()),
            Cell::from(x.detector.clone()),
            Cell::from(x.entity.clone()),
            Cell::from(format!("{} +{}m", time(x.window_start), (x.window_end - x.window_start) / 60)),
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
    .header(Row::new(["SEVERITY", "SCORE", "DETECTOR", "ENTITY", "WINDOW (UTC)", "TITLE"]).bold())
    .row_highlight_style(Style::new().reversed())
    .block(Block::new().borders(Borders::TOP));
    let mut state = TableState::default().with_selected((!app.visible.is_empty()).then_some(app.selected));
    f.render_stateful_widget(table, area, &mut state);
    if app.visible.is_empty() {
        let msg = if app.findings.is_empty() { "No findings in this file." } else { "No finding matches the filters (Esc clears them)." };
        f.render_widget(Paragraph::new(msg).dark_gray(), area.inner(ratatui::layout::Margin::new(1, 2)));
    }
}

fn kv(k: &str, v: String) -> Line<'static> {
    Line::from(vec![Span::raw(format!("{k:<14}")).dark_gray(), Span::raw(v)])
}

fn draw_detail(app: &App, f: &mut Frame, area: Rect) {
    let Some(x) = app.focused() else { return };
    let mut lines: Vec<Line> = vec![
        Line::from(x.title.clone()).bold(),
        Line::raw(""),
        kv("severity", format!("{} ({})", x.severity, x.score)),
        kv("detector", x.detector.clone()),
        kv("entity", format!("{} {}", x.entity_kind, x.entity)),
        kv("window", format!("{} → {} UTC", time(x.window_start), time(x.window_end))),
        kv("account", format!("{} {}", x.account, x.region)),
        kv("id", x.id.clone()),
        Line::raw(""),
    ];
    lines.extend(x.description.lines().map(|l| Line::raw(l.to_string())));
    lines.push(Line::raw(""));
    lines.push(Line::from("Observed vs baseline").bold());
    let names: Vec<&String> = {
        let mut n: Vec<&String> = x.observed.iter().map(|(k, _)| k).chain(x.baseline.iter().map(|(k, _)| k)).collect();
        n.sort();
        n.dedup();
        n
    };
    for n in names {
        let get = |v: &[(String, String)]| v.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_else(|| "-".into());
        lines.push(Line::raw(format!("  {n:<28} observed {:<24} baseline {}", get(&x.observed), get(&x.baseline))));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from("Evidence").bold());
    if !x.evidence_columns.is_empty() {
        lines.push(Line::raw(format!("  {}", x.evidence_columns.join(" | "))).dark_gray());
    }
    for r in &x.evidence_rows {
        lines.push(Line::raw(format!("  {}", r.join(" | "))));
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
        .map(|x| format!(" archive rows for {} in {} → {} ", x.entity, time(x.window_start), time(x.window_end)))
        .unwrap_or_default()
}

fn grid_table(g: &Grid, scroll: usize) -> Table<'_> {
    let widths: Vec<Constraint> = g
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let w = g.rows.iter().take(200).map(|r| r.get(i).map_or(0, |s| s.chars().count())).max().unwrap_or(0);
            Constraint::Length(w.max(c.chars().count()).clamp(3, 48) as u16)
        })
        .collect();
    let rows = g.rows.iter().skip(scroll).map(|r| Row::new(r.iter().map(|s| Cell::from(s.as_str()))));
    Table::new(rows, widths).header(Row::new(g.columns.iter().map(|c| Cell::from(c.as_str()))).bold())
}

fn draw_load(f: &mut Frame, area: Rect, title: &str, load: &Load<Grid>, scroll: usize) {
    let block = Block::new().borders(Borders::TOP).title(title.to_string());
    match load {
        Load::Idle => f.render_widget(Paragraph::new("").block(block), area),
        Load::Loading => f.render_widget(Paragraph::new("Loading…").dark_gray().block(block), area),
        Load::Failed(e) => f.render_widget(Paragraph::new(e.clone()).red().wrap(Wrap { trim: false }).block(block), area),
        Load::Ready(g) if g.rows.is_empty() => f.render_widget(Paragraph::new("No rows.").dark_gray().block(block), area),
        Load::Ready(g) => {
            let title = format!("{title}({} rows) ", g.rows.len());
            f.render_widget(grid_table(g, scroll).block(Block::new().borders(Borders::TOP).title(title)), area);
        }
    }
}

fn draw_grid_screen(f: &mut Frame, area: Rect, title: &str, load: &Load<Grid>, scroll: usize) {
    draw_load(f, area, title, load, scroll);
}

fn draw_timeline(app: &App, f: &mut Frame, area: Rect) {
    let Some(x) = app.focused() else { return };
    let title = format!(
        " {} of {} per 5 minutes, 6 h either side of the window (red) ",
        if crate::app::is_waf(x) { "requests" } else { "bytes" },
        x.entity
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
        return f.render_widget(Paragraph::new("No traffic in the archive for this entity.").dark_gray().block(block), area);
    }
    let width = (area.width as usize / points.len().max(1)).clamp(1, 6) as u16;
    let bars: Vec<Bar> = points
        .iter()
        .map(|&(t, v)| {
            let inside = t >= x.window_start - 299 && t < x.window_end;
            Bar::default()
                .value(v)
                .text_value(String::new())
                .style(if inside { Style::new().red() } else { Style::new().blue() })
        })
        .collect();
    let max = points.iter().map(|p| p.1).max().unwrap_or(0);
    let [chart, legend] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    f.render_widget(
        BarChart::default().block(block).data(BarGroup::default().bars(&bars)).bar_width(width).bar_gap(0),
        chart,
    );
    f.render_widget(
        Paragraph::new(format!(
            " {} … {} UTC   peak {max}",
            time(points[0].0),
            time(points[points.len() - 1].0)
        ))
        .dark_gray(),
        legend,
    );
}

fn draw_costs(app: &App, f: &mut Frame, area: Rect) {
    let Load::Ready(g) = &app.costs else {
        return draw_load(f, area, " cross-AZ cost ", &app.costs, 0);
    };
    // Dollars by AZ pair, summed from the talker pairs.
    let col = |n: &str| g.columns.iter().position(|c| c == n);
    let (Some(pair), Some(usd)) = (col("az_pair"), col("usd")) else {
        return draw_load(f, area, " cross-AZ cost ", &app.costs, app.scroll);
    };
    let mut by_pair: Vec<(String, f64)> = Vec::new();
    for r in &g.rows {
        let v: f64 = r.get(usd).and_then(|s| s.parse().ok()).unwrap_or(0.0);
        let p = r.get(pair).cloned().unwrap_or_default();
        match by_pair.iter_mut().find(|(k, _)| *k == p) {
            Some(e) => e.1 += v,
            None => by_pair.push((p, v)),
        }
    }
    by_pair.sort_by(|a, b| b.1.total_cmp(&a.1));
    let [top, bottom] = Layout::vertical([Constraint::Length(by_pair.len().min(8) as u16 + 2), Constraint::Min(3)]).areas(area);
    let lines: Vec<Line> = by_pair
        .iter()
        .take(8)
        .map(|(p, v)| {
            let max = by_pair[0].1.max(1e-9);
            let bar = "█".repeat(((v / max) * 30.0).round() as usize);
            Line::raw(format!(" {p:<26} ${v:>12.2}  {bar}"))
        })
        .collect();
    f.render_widget(Paragraph::new(lines).block(Block::new().borders(Borders::TOP).title(" dollars by AZ pair (archived period) ")), top);
    draw_load(f, bottom, " top talker pairs ", &app.costs, app.scroll);
}

fn draw_waf(app: &App, f: &mut Frame, area: Rect) {
    let [left, right] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    draw_load(f, left, " top clients ", &app.waf_clients, app.scroll);
    draw_load(f, right, " top JA4 fingerprints ", &app.waf_fingerprints, app.scroll);
}

fn draw_sql(app: &App, f: &mut Frame, area: Rect) {
    let [input, result] = Layout::vertical([Constraint::Length(3), Constraint::Min(3)]).areas(area);
    f.render_widget(
        Paragraph::new(format!("{}_", app.sql_input))
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(" SQL (tables flows, waf, findings) ")),
        input,
    );
    draw_load(f, result, " result ", &app.sql_result, app.scroll);
}

const HELP: &[(&str, &str)] = &[
    ("j / k, ↑ / ↓", "move or scroll"),
    ("PgUp / PgDn, g / G", "page, top, bottom"),
    ("Enter", "finding detail: evidence, baseline vs observed, next step"),
    ("p", "pivot: the archive's flows or requests for the entity and window"),
    ("t", "timeline: the entity's traffic around the window"),
    ("c", "cross-AZ cost board"),
    ("w", "WAF clients and fingerprints board"),
    (":", "SQL console (\\r NAME runs a saved query)"),
    ("/", "filter by text (Enter keeps, Esc clears)"),
    ("d / s / o", "cycle detector filter, minimum severity, sort"),
    ("Esc", "back (on the list: clear filters)"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit"),
];

fn draw_help(f: &mut Frame, area: Rect) {
    let w = 72.min(area.width);
    let h = (HELP.len() as u16 + 2).min(area.height);
    let popup = Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| Line::from(vec![Span::raw(format!(" {k:<20}")).bold(), Span::raw(*v)]))
        .collect();
    f.render_widget(Clear, popup);
    f.render_widget(Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" keys ")), popup);
}

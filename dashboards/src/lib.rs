//! flowlens dashboards: the analyst terminal UI (`flowlens tui`).
//!
//! ```text
//! keys (input thread) ──► Action ──► App::update ──► Effect::Query ──► tokio task ──┐
//!                            ▲                                                      │
//!                            └──────────────── Action::Loaded(tag, grid) ◄──────────┘
//! every turn: terminal.draw(|f| ui::draw(&app, f))   (drawing never changes state)
//! ```
//!
//! The loop is generic over the ratatui backend, so tests drive it with `TestBackend`.
//! Every string that came from logs is made inert before it is drawn ([`text`]).

pub mod app;
pub mod findings;
pub mod text;
pub mod ui;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;

pub use app::{Action, App, Effect, Grid};
use flowlens_queries::Archive;

/// Rows shown per query result: enough to scroll through, bounded so a careless
/// `SELECT *` over a large archive stays responsive.
pub const MAX_ROWS: usize = 10_000;

/// Query results as display strings (inert), at most [`MAX_ROWS`] rows.
pub fn grid(batches: &[RecordBatch]) -> Grid {
    let mut g = Grid::default();
    if let Some(b) = batches.first() {
        g.columns = b.schema().fields().iter().map(|f| text::cell(f.name())).collect();
    }
    let opts = FormatOptions::default().with_null("");
    for b in batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).ok())
            .collect();
        for i in 0..b.num_rows() {
            if g.rows.len() >= MAX_ROWS {
                return g;
            }
            g.rows.push(
                fmts.iter()
                    .map(|f| f.as_ref().map(|f| text::cell(&f.value(i).to_string())).unwrap_or_default())
                    .collect(),
            );
        }
    }
    g
}

/// Runs one query for the UI.
pub async fn run_query(archive: &Archive, sql: &str) -> Result<Grid, String> {
    let df = archive.plan(sql).await.map_err(|e| e.render(sql))?;
    let df = df.limit(0, Some(MAX_ROWS)).map_err(|e| e.to_string())?;
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    Ok(grid(&batches))
}

/// The event loop: draws, waits for the next key or result, applies it, starts the
/// queries it asks for; returns when the app quits or `events` closes.
///
/// # Errors
/// Drawing failed.
pub async fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    archive: Option<Arc<Archive>>,
    mut events: mpsc::Receiver<Action>,
) -> Result<(), B::Error> {
    let (done_tx, mut done) = mpsc::unbounded_channel::<Action>();
    loop {
        terminal.draw(|f| ui::draw(app, f))?;
        if app.quit {
            return Ok(());
        }
        let action = tokio::select! {
            a = events.recv() => match a { Some(a) => a, None => return Ok(()) },
            Some(a) = done.recv() => a,
        };
        for effect in app.update(action) {
            match effect {
                Effect::Query(tag, sql) => {
                    let tx = done_tx.clone();
                    let archive = archive.clone();
                    tokio::spawn(async move {
                        let result = match archive {
                            Some(a) => run_query(&a, &sql).await,
                            None => Err("no archive open".into()),
                        };
                        let _ = tx.send(Action::Loaded(tag, result));
                    });
                }
            }
        }
    }
}

/// Reads terminal key presses on a thread of its own and sends them as actions until
/// the receiver closes.
pub fn spawn_key_reader() -> mpsc::Receiver<Action> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        use crossterm::event::{self, Event, KeyEventKind};
        loop {
            if tx.is_closed() {
                return;
            }
            match event::poll(std::time::Duration::from_millis(200)) {
                Ok(true) => match event::read() {
                    Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => {
                        if tx.blocking_send(Action::Key(k)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
    rx
}

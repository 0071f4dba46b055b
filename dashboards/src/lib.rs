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

/// Query results as display strings (inert), at most [`MAX_ROWS`] rows; the columns
/// come from the schema, so an empty result still has them.
pub fn grid(schema: &arrow::datatypes::Schema, batches: &[RecordBatch]) -> Grid {
    let mut g = Grid {
        columns: schema
            .fields()
            .iter()
            .map(|f| text::cell(f.name()))
            .collect(),
        ..Grid::default()
    };
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
                    .map(|f| {
                        f.as_ref()
                            .map(|f| text::cell(&f.value(i).to_string()))
                            .unwrap_or_default()
                    })
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
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    Ok(grid(&schema, &batches))
}

/// The event loop: draws, waits for the next key or query result, applies it, starts
/// the queries it asks for on tokio tasks (the UI never waits for one). Returns when the
/// app quits, or when `events` closes and the queries already started have answered
/// (so a scripted session sees its results).
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
    let mut in_flight = 0usize;
    let mut input_open = true;
    loop {
        terminal.draw(|f| ui::draw(app, f))?;
        if app.quit || (!input_open && in_flight == 0) {
            return Ok(());
        }
        let action = tokio::select! {
            a = events.recv(), if input_open => match a {
                Some(a) => a,
                None => {
                    input_open = false;
                    continue;
                }
            },
            Some(a) = done.recv() => {
                in_flight -= 1;
                a
            }
        };
        for effect in app.update(action) {
            match effect {
                Effect::Query(tag, sql) => {
                    in_flight += 1;
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

/// Runs the UI in the real terminal: raw mode and the alternate screen, restored on
/// every way out (return, error, panic).
///
/// # Errors
/// The terminal could not be set up or drawn.
pub async fn run_terminal(app: &mut App, archive: Option<Arc<Archive>>) -> std::io::Result<()> {
    // `ratatui::init` also installs a panic hook that restores the terminal first.
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            let _ = ratatui::try_restore();
            return Err(e);
        }
    };
    let result = run(&mut terminal, app, archive, spawn_key_reader()).await;
    ratatui::try_restore()?;
    result
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

/// The keys a script names: `Enter`, `Esc`, `Up`, `Down`, `PgUp`, `PgDn`, `Home`,
/// `End`, `Backspace`, `Tab`, `Space`; any other word is typed character by character
/// (`/swept` types a slash and five letters), words separated by whitespace.
pub fn parse_keys(script: &str) -> Vec<Action> {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let key = |c| Action::Key(KeyEvent::new(c, KeyModifiers::NONE));
    let mut out = Vec::new();
    for word in script.split_whitespace() {
        let named = match word {
            "Enter" => Some(KeyCode::Enter),
            "Esc" => Some(KeyCode::Esc),
            "Up" => Some(KeyCode::Up),
            "Down" => Some(KeyCode::Down),
            "PgUp" => Some(KeyCode::PageUp),
            "PgDn" => Some(KeyCode::PageDown),
            "Home" => Some(KeyCode::Home),
            "End" => Some(KeyCode::End),
            "Backspace" => Some(KeyCode::Backspace),
            "Tab" => Some(KeyCode::Tab),
            "Space" => Some(KeyCode::Char(' ')),
            _ => None,
        };
        match named {
            Some(c) => out.push(key(c)),
            None => out.extend(word.chars().map(|c| key(KeyCode::Char(c)))),
        }
    }
    out
}

/// A drawn screen as plain text: one line per row, trailing spaces trimmed.
pub fn screen_text(buffer: &ratatui::buffer::Buffer) -> String {
    let width = usize::from(buffer.area.width).max(1);
    let mut out = String::new();
    for row in buffer.content.chunks(width) {
        let line: String = row.iter().map(|c| c.symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Without a terminal: replays `keys` through the real event loop (queries included),
/// waits for the queries they started, and returns the last screen as text.
pub async fn run_script(
    app: &mut App,
    archive: Option<Arc<Archive>>,
    keys: Vec<Action>,
    width: u16,
    height: u16,
) -> String {
    let mut terminal = match Terminal::new(ratatui::backend::TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(never) => match never {},
    };
    let (tx, rx) = mpsc::channel(keys.len().max(1));
    for k in keys {
        // Capacity is the number of keys: never full.
        let _ = tx.try_send(k);
    }
    drop(tx);
    if let Err(never) = run(&mut terminal, app, archive, rx).await {
        match never {}
    }
    screen_text(terminal.backend().buffer())
}

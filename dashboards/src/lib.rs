//! flowlens dashboards: the ratatui analyst UI (findings, evidence, pivots into the
//! archive). Lands with the terminal UI issue; the crate fixes its place in the
//! workspace (it may depend on the model and the queries crate only).

//! flowlens detectors: sans-IO, columnar detectors over the `flows` and `waf` batches
//! (exfiltration spikes, lateral movement, cross-AZ cost, scraping bots, public
//! exposure). They take batches and a watermark and return findings; they never do IO.
//!
//! The crate exists so the workspace layout and its dependency rules (no AWS, no tokio,
//! no IO here) are fixed from the start; the detectors land with the detectors issue.

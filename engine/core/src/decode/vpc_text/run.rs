//! The text decoder's fast path: runs of plain records, decoded column by column.
//!
//! The stop index ([`Stops`]) lists where every token of the window ends. When the
//! records have the plain shape AWS writes — printable ASCII tokens, one space between
//! them, a newline after the last — record `r`'s field `k` ends at stop `r × width + k`,
//! so the index already is a table of every token of the run. [`Active::fast_run`]
//! fills each column for all the records of the run at once (as many as the window
//! holds, up to a limit the caller sets): a column's loop knows its type, so no record
//! pays a dispatch per field, and each builder is written in one stream: room for the
//! run is reserved at once and the rows written into it in order, the validity appended
//! per stretch ([`crate::decode::col_run`]).
//!
//! Each column checks its own tokens: not empty, followed by the
//! separator its position calls for (a single space, or the newline after the last
//! field), and, in a numeric column, a valid number for the field. A record is plain
//! when all its tokens pass, so the first failure in any column cuts the run before
//! that record (the columns already filled are truncated); that record goes to the
//! general path, which decodes or reports it.

use arrow::datatypes::ArrowPrimitiveType;

use super::fast::{self, Stops};
use super::{Active, Column};
use crate::decode::num_col::NumCol;
use crate::decode::str_col::StrCol;

/// Why a run of plain records ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RunEnd {
    /// The run took as many records as it was allowed (the batch is full, or the
    /// caller's run limit is reached).
    Limit,
    /// The input ends.
    End,
    /// The next record needs the general path.
    General,
    /// The indexed window ends inside the next record.
    Window,
}

/// What [`Active::fast_run`] decoded.
pub(super) struct Run {
    /// Records appended (and counted in [`Active::rows`]).
    pub(super) rows: usize,
    /// Where the record after them starts.
    pub(super) next: usize,
    pub(super) end: RunEnd,
    /// Tokens the columns took, including those of records dropped when the run was cut.
    #[cfg(test)]
    pub(super) taken: usize,
}

/// The tokens of a run: token `k` of row `r` ends at `ends[r × width + k]` and starts
/// right after the token before it (the run's first token at `first`), all positions
/// relative to `win`, the input from the window's start.
struct Tokens<'a> {
    win: &'a [u8],
    ends: &'a [u32],
    width: usize,
    first: usize,
}

impl Tokens<'_> {
    /// Where the `i`-th token of the run starts (the one after stop `i - 1`).
    #[inline(always)]
    fn start_of(&self, i: usize) -> usize {
        match i {
            0 => self.first,
            _ => self.ends[i - 1] as usize + 1,
        }
    }

    /// Hands `take` field `k` of each of the first `rows` rows, in order — the token's
    /// start and length — while the tokens have the plain shape (not empty, followed by
    /// the separator field `k` calls for) and `take` accepts them. (A token's length
    /// needs no check: a token inside a window is shorter than the general path's
    /// longest line.)
    ///
    /// The loop walks the stops with a stride of one record (no multiplication per
    /// token); a token starts one byte after the stop before its end.
    #[inline(always)]
    fn each(&self, k: usize, rows: usize, mut take: impl FnMut(usize, usize) -> bool) {
        let separator = if k + 1 == self.width { b'\n' } else { b' ' };
        let (ends, win) = (&self.ends[..rows * self.width], self.win);
        let mut i = k;
        while i < ends.len() {
            let start = self.start_of(i);
            let end = ends[i] as usize;
            let plain = end > start && win.get(end) == Some(&separator);
            if !plain || !take(start, end - start) {
                return;
            }
            i += self.width;
        }
    }
}

/// Whether the token whose length is `len` and whose first bytes `head` holds is `-`.
#[inline(always)]
fn is_dash(head: u128, len: usize) -> bool {
    len == 1 && head as u8 == b'-'
}

/// Appends field `k` of the first `rows` rows as numbers of at most `max`; returns how
/// many rows it appended (fewer when a token is not plain, or neither `-` nor such a
/// number).
///
/// Not inlined into the run (nor is [`texts`]): on its own, the loop keeps its cursor,
/// output and bounds in registers.
#[inline(never)]
fn numbers<T: ArrowPrimitiveType>(
    column: &mut NumCol<T>,
    tokens: &Tokens<'_>,
    k: usize,
    rows: usize,
    max: u64,
    native: impl Fn(u64) -> T::Native,
) -> usize {
    column.fill_run(rows, |slots| {
        tokens.each(k, rows, |start, len| {
            let head = fast::load16(tokens.win, start);
            match fast::parse_uint(head, tokens.win, start, len) {
                Some(v) if v <= max => {
                    slots.push(native(v));
                    true
                }
                None if is_dash(head, len) => {
                    slots.push_null();
                    true
                }
                _ => false,
            }
        })
    })
}

/// Appends field `k` of the first `rows` rows as text (`-`: `fill`, or null); returns how
/// many rows it appended (fewer when a token is not plain).
#[inline(never)]
fn texts(
    column: &mut StrCol,
    tokens: &Tokens<'_>,
    k: usize,
    rows: usize,
    fill: Option<&str>,
) -> usize {
    column.fill_run(rows, |slots, values| {
        let fill = fill.map(|f| values.view(f));
        tokens.each(k, rows, |start, len| {
            let head = fast::load16(tokens.win, start);
            match (is_dash(head, len), fill) {
                (false, _) => slots.push(values.view_ascii(&tokens.win[start..start + len], head)),
                (true, Some(fill)) => slots.push(fill),
                (true, None) => slots.push_null(),
            }
            true
        })
    })
}

impl Active {
    /// Decodes the run of plain records that starts at `buf[start]` (a line start),
    /// at most `room` of them, straight into the builders (see the module docs).
    ///
    /// `stops` indexes the window from `start` or before, its cursor at the first stop
    /// at or after `start`; it is left at the first stop after the run. The record
    /// after the run starts at [`Run::next`], and [`Run::end`] says what it needs.
    pub(super) fn fast_run(
        &mut self,
        buf: &[u8],
        start: usize,
        stops: &mut Stops,
        room: usize,
    ) -> Run {
        let width = self.plans.len();
        let (ends, base) = stops.pending();
        // Every record the window holds in full, as if all were plain; the columns
        // cut the run at the first record that is not.
        let mut rows = room.min(ends.len() / width);
        let tokens = Tokens {
            win: &buf[base..],
            ends: &ends[..rows * width],
            width,
            first: start - base,
        };
        let mut cut = false;
        #[cfg(test)]
        let mut taken = 0;
        for k in 0..width {
            let plan = &self.plans[k];
            let done = match &mut self.columns[k] {
                Column::I32(c) => numbers(c, &tokens, k, rows, plan.max, |v| v as i32),
                Column::I64(c) => numbers(c, &tokens, k, rows, plan.max, |v| v as i64),
                Column::Str(c) => texts(c, &tokens, k, rows, plan.fill.as_deref()),
                Column::Extra => 0,
            };
            #[cfg(test)]
            {
                taken += done;
            }
            if done < rows {
                rows = done;
                cut = true;
                for column in &mut self.columns[..k] {
                    column.truncate(self.rows + rows);
                }
            }
        }
        let next = base + tokens.start_of(rows * width);
        let end = if cut {
            RunEnd::General
        } else if rows == room {
            RunEnd::Limit
        } else if next >= buf.len() {
            RunEnd::End
        } else {
            RunEnd::Window
        };
        self.rows += rows;
        stops.skip(rows * width);
        Run {
            rows,
            next,
            end,
            #[cfg(test)]
            taken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `text` through the tokens' checks of a `width`-field format whose fields
    /// are all text; returns the rows decoded and why the run ended.
    fn shape(text: &str, width: usize, room: usize) -> (usize, RunEnd) {
        let format = super::super::Format::parse(
            &["${account-id}", "${interface-id}", "${action}"][..width].join(" "),
        )
        .unwrap();
        let ctx = crate::decode::ObjectContext::new("x");
        let mut active = Active::new(format, &ctx, 4);
        let mut stops = Stops::default();
        stops.index(text.as_bytes(), 0);
        let run = active.fast_run(text.as_bytes(), 0, &mut stops, room);
        assert_eq!(active.rows, run.rows);
        (run.rows, run.end)
    }

    #[test]
    fn runs_stop_at_the_first_bent_record() {
        assert_eq!(shape("a b\nc d\n", 2, 10), (2, RunEnd::End));
        assert_eq!(shape("a b\nc d\n", 2, 1), (1, RunEnd::Limit));
        for bent in [
            "c  d\n", "c\td\n", "c d \n", "c d\r\n", "c\n", "c d e\n", " c d\n",
        ] {
            let text = format!("a b\n{bent}e f\n");
            assert_eq!(shape(&text, 2, 10), (1, RunEnd::General), "{bent:?}");
        }
        // Fewer stops left than a record has tokens: the window ends inside it.
        assert_eq!(shape("a b\nc", 2, 10), (1, RunEnd::Window));
        // Any token inside the window is plain, however long.
        let long = format!("a {}\n", "x".repeat(5000));
        assert_eq!(shape(&long, 2, 10), (1, RunEnd::End));
    }
}

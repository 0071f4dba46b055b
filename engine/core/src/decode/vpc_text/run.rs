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

/// The tokens of a run: token `k` of row `r` ends at `base + ends[r × width + k]` and
/// starts right after the token before it (the run's first token at `start`).
struct Tokens<'a> {
    buf: &'a [u8],
    ends: &'a [u32],
    base: usize,
    width: usize,
    start: usize,
}

impl Tokens<'_> {
    /// Where the `i`-th token of the run starts (the one after stop `i - 1`).
    #[inline(always)]
    fn start_of(&self, i: usize) -> usize {
        match i {
            0 => self.start,
            _ => self.base + self.ends[i - 1] as usize + 1,
        }
    }

    /// Token `k` of row `r` — its first byte's position and its bytes — if it has the
    /// plain shape: not empty and followed by `separator`. (Its length needs no check:
    /// a token inside a window is shorter than the general path's longest line.)
    #[inline(always)]
    fn token(&self, r: usize, k: usize, separator: u8) -> Option<(usize, &[u8])> {
        let i = r * self.width + k;
        let start = self.start_of(i);
        let end = self.base + self.ends[i] as usize;
        let plain = end > start && self.buf[end] == separator;
        plain.then(|| (start, &self.buf[start..end]))
    }

    /// Hands `take` field `k` of each of the first `rows` rows, in order — the token's
    /// start and bytes, or `None` for `-` — while the tokens are plain and `take`
    /// accepts them.
    #[inline(always)]
    fn each(&self, k: usize, rows: usize, mut take: impl FnMut(Option<(usize, &[u8])>) -> bool) {
        let separator = self.separator(k);
        for r in 0..rows {
            let Some((start, token)) = self.token(r, k, separator) else {
                return;
            };
            if !take((token != b"-").then_some((start, token))) {
                return;
            }
        }
    }

    /// The byte after field `k` of a plain record.
    fn separator(&self, k: usize) -> u8 {
        if k + 1 == self.width { b'\n' } else { b' ' }
    }
}

/// Appends field `k` of the first `rows` rows as numbers of at most `max`; returns how
/// many rows it appended (fewer when a token is not plain, or neither `-` nor such a
/// number).
#[inline(always)]
fn numbers<T: ArrowPrimitiveType>(
    column: &mut NumCol<T>,
    tokens: &Tokens<'_>,
    k: usize,
    rows: usize,
    max: u64,
    native: impl Fn(u64) -> T::Native,
) -> usize {
    column.fill_run(rows, |slots| {
        tokens.each(k, rows, |value| match value {
            None => {
                slots.push_null();
                true
            }
            Some((start, token)) => {
                match fast::parse_uint(fast::load16(tokens.buf, start), token) {
                    Some(v) if v <= max => {
                        slots.push(native(v));
                        true
                    }
                    _ => false,
                }
            }
        })
    })
}

/// Appends field `k` of the first `rows` rows as text (`-`: `fill`, or null); returns
/// how many rows it appended (fewer when a token is not plain).
#[inline(always)]
fn texts(
    column: &mut StrCol,
    tokens: &Tokens<'_>,
    k: usize,
    rows: usize,
    fill: Option<&str>,
) -> usize {
    column.fill_run(rows, |slots, values| {
        let fill = fill.map(|f| values.view(f));
        tokens.each(k, rows, |value| {
            match (value, fill) {
                (Some((start, token)), _) => {
                    slots.push(values.view_ascii(token, fast::load16(tokens.buf, start)))
                }
                (None, Some(fill)) => slots.push(fill),
                (None, None) => slots.push_null(),
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
            buf,
            ends: &ends[..rows * width],
            base,
            width,
            start,
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
        let next = tokens.start_of(rows * width);
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

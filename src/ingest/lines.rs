//! Physical line numbers of byte offsets in an input file, as an editor shows them: `\n`,
//! `\r\n` and a lone `\r` each end a line. The `csv` crate accepts all three as record
//! terminators, but its own line count sees only `\n`, so a file with CR-only line ends would
//! report every row on line 1. `LineCounter` counts in memory (master data, programs.toml),
//! `FileLineCounter` reading forward through a file (quoted revenue CSV); both count with
//! `line_ends`, the one rule of what ends a line. Never used on the plain CSV path, which has
//! no lone `\r` and counts `\n` alone.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// 1-based line of a byte offset (the line the byte at `offset` is on).
pub fn line_of_offset(bytes: &[u8], offset: usize) -> u64 {
    let mut counter = LineCounter::new(bytes);
    counter.line_at(offset)
}

/// Line numbers of increasing offsets in one pass over the bytes (rows are read in order).
pub struct LineCounter<'a> {
    bytes: &'a [u8],
    /// Bytes before `counted_to` are counted in `line` (by `line_ends`: a `\r\n` counts at its
    /// `\r`).
    counted_to: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            counted_to: 0,
            line: 1,
        }
    }

    /// The 1-based line of `offset`. Offsets may come in any order; increasing ones are cheap.
    pub fn line_at(&mut self, offset: usize) -> u64 {
        let offset = offset.min(self.bytes.len());
        if offset < self.counted_to {
            *self = Self::new(self.bytes);
        }
        let after_cr = self.counted_to > 0 && self.bytes[self.counted_to - 1] == b'\r';
        let (ends, _) = line_ends(&self.bytes[self.counted_to..offset], after_cr);
        self.line += ends;
        self.counted_to = offset;
        // The `\n` of a `\r\n` is on the line the pair ends, which `line_ends` counted already.
        let inside_crlf =
            offset > 0 && self.bytes[offset - 1] == b'\r' && self.bytes.get(offset) == Some(&b'\n');
        self.line - u64::from(inside_crlf)
    }

    /// The line a CSV record starts on, from the offset the `csv` crate gives it: the end of
    /// the previous record, which may still be before that record's line end (the `\n` of a
    /// `\r\n`) and before blank lines that the crate skips.
    pub fn record_line(&mut self, offset: usize) -> u64 {
        let offset = offset.min(self.bytes.len());
        let start = self.bytes[offset..]
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .map_or(self.bytes.len(), |skip| offset + skip);
        self.line_at(start)
    }
}

/// Physical line numbers of byte offsets, read forward through the file once: the `csv` crate
/// does not count blank lines, and a line number must be the one an editor shows. A line ends
/// at `\n`, `\r\n` or a lone `\r` (old Mac and some Excel exports), as the `csv` crate reads it.
pub struct FileLineCounter {
    reader: BufReader<File>,
    at: u64,
    line: u64,
    /// The last byte counted was a carriage return: a `\n` right after it ends no new line.
    after_cr: bool,
}

impl FileLineCounter {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            reader: BufReader::with_capacity(1 << 16, File::open(path)?),
            at: 0,
            line: 1,
            after_cr: false,
        })
    }

    /// The line where a record starting at byte `offset` has its first character; offsets
    /// must not go backwards.
    pub fn record_line(&mut self, offset: u64) -> std::io::Result<u64> {
        use std::io::BufRead;
        while self.at < offset {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                break;
            }
            let take = buffer.len().min((offset - self.at) as usize);
            let (ends, after_cr) = line_ends(&buffer[..take], self.after_cr);
            (self.line, self.after_cr) = (self.line + ends, after_cr);
            self.reader.consume(take);
            self.at += take as u64;
        }
        // The csv crate's record starts after the last terminator, before skipped blank lines.
        loop {
            let first = self.reader.fill_buf()?.first().copied();
            match first {
                Some(byte @ (b'\n' | b'\r')) => {
                    let (ends, after_cr) = line_ends(&[byte], self.after_cr);
                    (self.line, self.after_cr) = (self.line + ends, after_cr);
                }
                _ => break,
            }
            self.reader.consume(1);
            self.at += 1;
        }
        Ok(self.line)
    }
}

/// How many lines end in `bytes` (`\n`, `\r\n` or a lone `\r`), and whether it ends in `\r`;
/// `after_cr`: the byte before `bytes` was a carriage return.
pub fn line_ends(bytes: &[u8], after_cr: bool) -> (u64, bool) {
    let mut ends = 0;
    for at in memchr::memchr2_iter(b'\r', b'\n', bytes) {
        let follows_cr = if at == 0 {
            after_cr
        } else {
            bytes[at - 1] == b'\r'
        };
        if bytes[at] == b'\r' || !follows_cr {
            ends += 1;
        }
    }
    (ends, bytes.last().map_or(after_cr, |&b| b == b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_crlf_and_lone_cr_each_end_one_line() {
        for text in ["a\nb\nc", "a\r\nb\r\nc", "a\rb\rc", "a\r\nb\rc"] {
            let bytes = text.as_bytes();
            let c = text.find('c').unwrap();
            assert_eq!(line_of_offset(bytes, 0), 1, "{text:?}");
            assert_eq!(line_of_offset(bytes, c), 3, "{text:?}");
        }
        // Blank lines count.
        assert_eq!(line_of_offset(b"a\r\r\rb", 4), 4);
    }

    #[test]
    fn a_record_starts_after_line_ends_and_blank_lines() {
        let bytes = b"h\r\na\r\n\r\nb\rc";
        let mut counter = LineCounter::new(bytes);
        // The csv crate positions `a` at the `\n` of the header's `\r\n`.
        assert_eq!(counter.record_line(2), 2);
        assert_eq!(counter.record_line(5), 4);
        assert_eq!(counter.record_line(10), 5);
    }

    /// The rule byte by byte, looking ahead: the reference `line_ends` must agree with.
    fn editor_line(bytes: &[u8], offset: usize) -> u64 {
        let mut line = 1;
        for at in 0..offset.min(bytes.len()) {
            match bytes[at] {
                b'\n' => line += 1,
                // A `\r` ends a line unless a `\n` follows (then that `\n` ends it).
                b'\r' if bytes.get(at + 1) != Some(&b'\n') => line += 1,
                _ => {}
            }
        }
        line
    }

    proptest::proptest! {
        #[test]
        fn both_counters_give_the_line_an_editor_shows(
            bytes in proptest::collection::vec(proptest::sample::select(b"ab\r\n".to_vec()), 0..64),
            offsets in proptest::collection::vec(0usize..70, 1..8),
        ) {
            let mut counter = LineCounter::new(&bytes);
            for &offset in &offsets {
                proptest::prop_assert_eq!(counter.line_at(offset), editor_line(&bytes, offset));
            }
            // The streaming counter, at record starts in increasing order, as the csv crate
            // gives them, agrees with the in-memory one.
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("lines.csv");
            std::fs::write(&path, &bytes).unwrap();
            let mut file_lines = FileLineCounter::open(&path).unwrap();
            let mut sorted = offsets.clone();
            sorted.sort_unstable();
            for offset in sorted {
                proptest::prop_assert_eq!(
                    file_lines.record_line(offset as u64).unwrap(),
                    LineCounter::new(&bytes).record_line(offset)
                );
            }
        }
    }

    #[test]
    fn counter_agrees_with_one_off_counting_in_any_order() {
        let bytes = b"h\r1\r\n2\n\r3\r";
        let mut counter = LineCounter::new(bytes);
        for offset in [0, 3, 5, 9, 2, 10, 11] {
            assert_eq!(
                counter.line_at(offset),
                line_of_offset(bytes, offset),
                "{offset}"
            );
        }
    }
}

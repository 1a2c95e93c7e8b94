//! Physical line numbers of byte offsets in an input file, as an editor shows them: `\n`,
//! `\r\n` and a lone `\r` each end a line. The `csv` crate accepts all three as record
//! terminators, but its own line count sees only `\n`, so a file with CR-only line ends would
//! report every row on line 1. Never used on anything but master data and programs.toml.

/// 1-based line of a byte offset (the line the byte at `offset` is on).
pub fn line_of_offset(bytes: &[u8], offset: usize) -> u64 {
    let mut counter = LineCounter::new(bytes);
    counter.line_at(offset)
}

/// Line numbers of increasing offsets in one pass over the bytes (rows are read in order).
pub struct LineCounter<'a> {
    bytes: &'a [u8],
    /// Bytes before `counted_to` are counted in `line`.
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
        for at in self.counted_to..offset {
            match self.bytes[at] {
                b'\n' => self.line += 1,
                // A `\r` ends a line unless a `\n` follows (then that `\n` ends it).
                b'\r' if self.bytes.get(at + 1) != Some(&b'\n') => self.line += 1,
                _ => {}
            }
        }
        self.counted_to = offset;
        self.line
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

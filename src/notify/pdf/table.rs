//! The statement's tables, laid out so that no text can overlap whatever its length: column
//! widths come from the widest text of each column, text columns give way first when the page
//! is too narrow, and every cell wraps inside its column (between characters where it has no
//! spaces). Label-and-value rows wrap their label beside the value the same way.

use super::{Color, Layout, MARGIN, Op, RIGHT};

/// Space between two columns, and inside the table's edges.
const COLUMN_GAP: f32 = 10.0;
const CELL_PADDING: f32 = 4.0;
/// A text column never gets narrower than this (a few characters a line).
const MIN_TEXT_COLUMN: f32 = 36.0;
/// Share of the width numbers may take before they give way too.
const MAX_NUMBER_SHARE: f32 = 0.7;
const HEADER_SIZE: f32 = 8.5;
const CELL_SIZE: f32 = 9.5;
const LINE_HEIGHT: f32 = 12.0;

/// How a column's text sits in it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Right,
}

pub(super) struct Column {
    pub header: String,
    pub align: Align,
    /// Never break a word of this column's cells between characters (a rate or an FX rate
    /// must be read whole): the column is at least as wide as its widest word, and the other
    /// columns give way.
    pub whole_words: bool,
}

impl Layout<'_> {
    /// Widths of `columns` that fit between the margins: natural widths when they fit (the
    /// first column takes what is left), else numbers keep theirs and text columns share the
    /// rest in proportion to their natural widths.
    fn column_widths(&self, columns: &[Column], rows: &[Vec<String>]) -> Vec<f32> {
        let widths = self.shared_widths(columns, rows);
        let widest_word = |text: &str, size: f32, bold: bool| {
            text.split(' ')
                .map(|word| self.width(word, size, bold))
                .fold(0.0, f32::max)
        };
        // What a column cannot do with less: the widest word of a whole-word column's cells,
        // and of every header (a header is not cut inside a word while others have room).
        let floors: Vec<f32> = columns
            .iter()
            .enumerate()
            .map(|(at, column)| {
                let header = widest_word(&column.header, HEADER_SIZE, true);
                let cells = match column.whole_words {
                    true => rows
                        .iter()
                        .map(|row| widest_word(&row[at], CELL_SIZE, false))
                        .fold(0.0, f32::max),
                    false => 0.0,
                };
                header.max(cells)
            })
            .collect();
        let deficit: f32 = widths
            .iter()
            .zip(&floors)
            .map(|(w, floor)| (floor - w).max(0.0))
            .sum();
        // Only text columns give way (numbers wrapped inside a figure read badly), each in
        // proportion to its room above its floor.
        let gives_way = |at: usize| columns[at].align == Align::Left && !columns[at].whole_words;
        let slack: f32 = (0..columns.len())
            .filter(|&at| gives_way(at))
            .map(|at| (widths[at] - floors[at]).max(0.0))
            .sum();
        if deficit <= 0.0 || slack < deficit {
            // Nothing to claim, or no room to claim it from: the shared widths stand.
            return widths;
        }
        let give = deficit / slack;
        (0..columns.len())
            .map(|at| {
                let (w, floor) = (widths[at], floors[at]);
                if w < floor {
                    floor
                } else if gives_way(at) {
                    w - (w - floor) * give
                } else {
                    w
                }
            })
            .collect()
    }

    /// Widths before whole-word columns claim their widest word (see `column_widths`).
    fn shared_widths(&self, columns: &[Column], rows: &[Vec<String>]) -> Vec<f32> {
        let natural: Vec<f32> = columns
            .iter()
            .enumerate()
            .map(|(at, column)| {
                rows.iter()
                    .map(|row| self.width(&row[at], CELL_SIZE, false))
                    .fold(self.width(&column.header, HEADER_SIZE, true), f32::max)
            })
            .collect();
        let gaps = COLUMN_GAP * (columns.len().saturating_sub(1)) as f32;
        let available = RIGHT - MARGIN - 2.0 * CELL_PADDING - gaps;
        let total: f32 = natural.iter().sum();
        if total <= available {
            let mut widths = natural;
            widths[0] += available - total;
            return widths;
        }
        let is_number = |at: usize| columns[at].align == Align::Right;
        let numbers: f32 = (0..columns.len())
            .filter(|&at| is_number(at))
            .map(|at| natural[at])
            .sum();
        if numbers > available * MAX_NUMBER_SHARE {
            // Even the numbers do not fit beside the text: everything shrinks alike.
            return natural.iter().map(|w| w * available / total).collect();
        }
        let text_total = total - numbers;
        let text_room = available - numbers;
        natural
            .iter()
            .enumerate()
            .map(|(at, &width)| match is_number(at) {
                true => width,
                false => (width * text_room / text_total).max(MIN_TEXT_COLUMN.min(text_room)),
            })
            .collect()
    }

    /// Draws a table: a header band, then one row per entry, each cell wrapped in its column.
    pub(super) fn table(&mut self, columns: &[Column], rows: &[Vec<String>]) {
        let widths = self.column_widths(columns, rows);
        let mut lefts = Vec::with_capacity(widths.len());
        let mut x = MARGIN + CELL_PADDING;
        for width in &widths {
            lefts.push(x);
            x += width + COLUMN_GAP;
        }
        let headers: Vec<String> = columns.iter().map(|c| c.header.clone()).collect();
        self.row(columns, &widths, &lefts, &headers, true);
        for row in rows {
            self.row(columns, &widths, &lefts, row, false);
        }
    }

    fn row(
        &mut self,
        columns: &[Column],
        widths: &[f32],
        lefts: &[f32],
        cells: &[String],
        header: bool,
    ) {
        let size = if header { HEADER_SIZE } else { CELL_SIZE };
        let wrapped: Vec<Vec<String>> = cells
            .iter()
            .zip(widths)
            .map(|(text, &width)| self.wrap(text, size, header, width))
            .collect();
        let line_count = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let height = line_count as f32 * LINE_HEIGHT + 6.0;
        self.need(height + 2.0);
        let top = self.y;
        if header {
            self.ops().push(Op::Rect {
                x: MARGIN,
                y: top,
                w: RIGHT - MARGIN,
                h: height,
                color: Color::Band,
            });
        }
        for (at, lines) in wrapped.iter().enumerate() {
            for (number, line) in lines.iter().enumerate() {
                self.y = top + 3.0 + (number as f32 + 1.0) * LINE_HEIGHT - 2.5;
                match columns[at].align {
                    Align::Left => self.text(lefts[at], size, header, Color::Text, line),
                    Align::Right => {
                        self.text_right(lefts[at] + widths[at], size, header, Color::Text, line)
                    }
                }
            }
        }
        self.y = top + height;
        if !header {
            let y = self.y;
            self.rule(y, 0.5, Color::Rule);
        }
    }

    /// A label and its value on one row: the value right-aligned at `right`, the label wrapped
    /// in the room left of it.
    pub(super) fn label_value(
        &mut self,
        label: &str,
        value: &str,
        size: f32,
        bold: bool,
        right: f32,
    ) {
        let value_width = self.width(value, size, bold);
        let room =
            (right - value_width - COLUMN_GAP - (MARGIN + CELL_PADDING)).max(MIN_TEXT_COLUMN);
        let lines = self.wrap(label, size, bold, room);
        let top = self.y;
        self.text_right(right, size, bold, Color::Text, value);
        for line in &lines {
            self.text(MARGIN + CELL_PADDING, size, bold, Color::Text, line);
            self.y += size * 1.45;
        }
        self.y = self.y.max(top + size * 1.45);
    }
}

//! PDF statements drawn with krilla in an embedded subset of Noto Sans CJK (Latin, Hangul,
//! kana and JIS kanji; `scripts/subset-fonts.sh`), so partner names in any of those scripts
//! render on every host without installing fonts. Layout is computed first as pages of drawing
//! operations, then written; no clock or random value enters the file, so the same statement
//! always gives the same bytes.

use std::sync::Arc;

use super::statement::StatementDoc;
use super::templates::{Language, Templates};
use crate::domain::reasons::PayoutStatus;
use table::{Align, Column};

mod face;
mod table;
#[cfg(test)]
mod tests;
mod write;

use face::{Face, drawn};
use write::write_pdf;

static CJK_REGULAR: &[u8] = include_bytes!("../fonts/NotoSansCJKkr-Subset-Regular.otf");
static CJK_BOLD: &[u8] = include_bytes!("../fonts/NotoSansCJKkr-Subset-Bold.otf");
/// The Latin part alone (about 37 KB): subsetting it per PDF is far cheaper, so statements
/// whose every character it covers use it.
static LATIN_REGULAR: &[u8] = include_bytes!("../fonts/NotoSansCJKkr-Latin-Regular.otf");
static LATIN_BOLD: &[u8] = include_bytes!("../fonts/NotoSansCJKkr-Latin-Bold.otf");

const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const MARGIN: f32 = 50.0;
const BOTTOM: f32 = PAGE_HEIGHT - 60.0;
const RIGHT: f32 = PAGE_WIDTH - MARGIN;
/// Where the values of the partner block start.
const META_VALUE_X: f32 = MARGIN + 130.0;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("embedded font cannot be read")]
    Font,
    #[error("PDF: {0}")]
    Write(String),
    /// A character the embedded fonts do not have would be drawn as a blank: refused, so a
    /// partner never receives (and the close never seals) a statement with text missing.
    #[error("the statement fonts have no glyph for {0:?} (U+{code:04X}); it would print as a blank", code = u32::from(*.0))]
    MissingGlyph(char),
}

/// A regular and a bold face.
pub struct FacePair {
    regular: Face,
    bold: Face,
}

impl FacePair {
    fn face(&self, bold: bool) -> &Face {
        if bold { &self.bold } else { &self.regular }
    }
}

/// The faces statements are drawn with; load once per process and share.
pub struct FontSet {
    latin: FacePair,
    cjk: FacePair,
}

impl FontSet {
    pub fn load() -> Result<Arc<Self>, PdfError> {
        Ok(Arc::new(Self {
            latin: FacePair {
                regular: Face::new(LATIN_REGULAR)?,
                bold: Face::new(LATIN_BOLD)?,
            },
            cjk: FacePair {
                regular: Face::new(CJK_REGULAR)?,
                bold: Face::new(CJK_BOLD)?,
            },
        }))
    }

    /// The Latin faces when they cover every character of `text`, else the CJK ones.
    fn for_text(&self, text: &str) -> &FacePair {
        if self.latin.regular.covers(text) && self.latin.bold.covers(text) {
            &self.latin
        } else {
            &self.cjk
        }
    }
}

#[derive(Clone, Copy)]
enum Color {
    Text,
    Muted,
    Accent,
    Rule,
    Band,
    Warning,
}

impl Color {
    fn rgb(self) -> krilla::color::rgb::Color {
        let (r, g, b) = match self {
            Color::Text => (31, 41, 51),
            Color::Muted => (82, 96, 109),
            Color::Accent => (11, 83, 148),
            Color::Rule => (210, 214, 220),
            Color::Band => (238, 242, 247),
            Color::Warning => (192, 57, 43),
        };
        krilla::color::rgb::Color::new(r, g, b)
    }
}

enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        color: Color,
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: Color,
    },
    Line {
        x1: f32,
        x2: f32,
        y: f32,
        width: f32,
        color: Color,
    },
}

/// Characters a wrapped line may not start with: closing brackets and punctuation (the common
/// part of JIS X 4051's line-start prohibitions).
const NO_LINE_START: &str = "、。，．,.:;!?）」』】〕〉》)]}・ー々ゝゞ！？：；";

/// Lays out text top-down over as many pages as needed.
struct Layout<'f> {
    fonts: &'f FacePair,
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl<'f> Layout<'f> {
    fn new(fonts: &'f FacePair) -> Self {
        Self {
            fonts,
            pages: vec![Vec::new()],
            y: 70.0,
        }
    }

    /// Every text drawn has a glyph for each of its characters in the face it is drawn in.
    fn check_glyphs(&self) -> Result<(), PdfError> {
        for op in self.pages.iter().flatten() {
            if let Op::Text { text, bold, .. } = op
                && let Some(ch) = self.fonts.face(*bold).uncovered(text)
            {
                return Err(PdfError::MissingGlyph(ch));
            }
        }
        Ok(())
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        // Invariant: `pages` starts with one page and only grows.
        self.pages.last_mut().expect("a page")
    }

    fn need(&mut self, height: f32) {
        if self.y + height > BOTTOM {
            self.pages.push(Vec::new());
            self.y = 70.0;
        }
    }

    fn width(&self, text: &str, size: f32, bold: bool) -> f32 {
        self.fonts.face(bold).width(&drawn(text), size)
    }

    fn text(&mut self, x: f32, size: f32, bold: bool, color: Color, text: &str) {
        let y = self.y;
        self.ops().push(Op::Text {
            x,
            y,
            size,
            bold,
            color,
            text: drawn(text).into_owned(),
        });
    }

    fn text_right(&mut self, right: f32, size: f32, bold: bool, color: Color, text: &str) {
        let x = right - self.width(text, size, bold);
        self.text(x, size, bold, color, text);
    }

    fn rule(&mut self, y: f32, width: f32, color: Color) {
        self.ops().push(Op::Line {
            x1: MARGIN,
            x2: RIGHT,
            y,
            width,
            color,
        });
    }

    /// Breaks `text` into lines no wider than `max_width`, at spaces where it can and between
    /// characters where it must (CJK text has no spaces).
    fn wrap(&self, text: &str, size: f32, bold: bool, max_width: f32) -> Vec<String> {
        // Composed first, so that a mark is never parted from its letter at a break.
        let text = drawn(text);
        let mut lines = Vec::new();
        let mut current = String::new();
        for word in text.split_inclusive(' ') {
            let candidate = format!("{current}{word}");
            if self.width(candidate.trim_end(), size, bold) <= max_width {
                current = candidate;
                continue;
            }
            if !current.is_empty() {
                lines.push(current.trim_end().to_owned());
                current.clear();
            }
            for ch in word.chars() {
                current.push(ch);
                if self.width(current.trim_end(), size, bold) > max_width {
                    current.pop();
                    // Closing punctuation never starts a line (Japanese kinsoku): the characters
                    // before it move down with it, back to one that may start a line.
                    let mut moved = vec![ch];
                    // Never more than fits one line: a run of such marks is broken anyway.
                    while NO_LINE_START.contains(moved[0]) && current.chars().count() > 1 {
                        let Some(before) = current.pop() else { break };
                        moved.insert(0, before);
                        let moved_text: String = moved.iter().collect();
                        if self.width(&moved_text, size, bold) > max_width {
                            current.push(moved.remove(0));
                            break;
                        }
                    }
                    lines.push(std::mem::take(&mut current));
                    current.extend(moved);
                }
            }
        }
        if !current.trim().is_empty() {
            lines.push(current.trim_end().to_owned());
        }
        lines
    }

    fn paragraph(&mut self, x: f32, size: f32, bold: bool, color: Color, text: &str) {
        for line in self.wrap(text, size, bold, RIGHT - x) {
            self.need(size * 1.5);
            self.text(x, size, bold, color, &line);
            self.y += size * 1.45;
        }
    }
}

/// Draws the statement and returns the PDF bytes.
pub fn render_statement_pdf(
    doc: &StatementDoc,
    templates: &Templates,
    fonts: &FontSet,
) -> Result<Vec<u8>, PdfError> {
    let layout = layout_statement(doc, templates, fonts);
    layout.check_glyphs()?;
    write_pdf(layout, doc)
}

/// The statement as pages of drawing operations.
fn layout_statement<'f>(
    doc: &StatementDoc,
    templates: &Templates,
    fonts: &'f FontSet,
) -> Layout<'f> {
    let language = Language::from_code(&doc.language);
    let label = |key: &str| templates.label(language, key);
    // Every text the statement shows comes from the document and its labels.
    let all_text = format!(
        "{}{}",
        serde_json::to_string(doc).unwrap_or_default(),
        templates.label_text(language)
    );
    // Chosen on the text as drawn (composed), which is what the face must cover.
    let mut l = Layout::new(fonts.for_text(&drawn(&all_text)));

    l.text(MARGIN, 20.0, true, Color::Accent, &label("title"));
    l.y += 18.0;
    l.paragraph(
        MARGIN,
        9.5,
        false,
        Color::Muted,
        &format!("{} · {}", doc.issuer_name, doc.program_name),
    );
    // The issuer block: address lines, then whom to write to.
    let contact = format!("{}: {}", label("contact"), doc.issuer_email);
    let issuer_lines = doc
        .issuer_address
        .iter()
        .map(String::as_str)
        .chain((!doc.issuer_email.is_empty()).then_some(contact.as_str()));
    for line in issuer_lines {
        l.paragraph(MARGIN, 8.5, false, Color::Muted, line);
    }
    l.y -= 3.0;
    let y = l.y;
    l.rule(y, 2.0, Color::Accent);
    l.y += 24.0;

    let program = format!("{} ({})", doc.program_name, doc.program_id);
    let mut meta = vec![("statement_number", doc.statement_number.as_str())];
    if !doc.issued_on.is_empty() {
        meta.push(("issued_on", doc.issued_on.as_str()));
    }
    for (key, value) in meta.into_iter().chain([
        ("partner", doc.partner_name.as_str()),
        ("partner_id", doc.partner_id.as_str()),
        ("program", program.as_str()),
        ("period", doc.period.as_str()),
        ("currency", doc.currency.as_str()),
    ]) {
        // Label and value each wrap in their own column, so a long name cannot run over.
        let top = l.y;
        let labels = l.wrap(&label(key), 9.5, false, META_VALUE_X - MARGIN - 8.0);
        let values = l.wrap(value, 10.5, key == "partner", RIGHT - META_VALUE_X);
        for (at, line) in labels.iter().enumerate() {
            l.y = top + at as f32 * 14.0;
            l.text(MARGIN, 9.5, false, Color::Muted, line);
        }
        for (at, line) in values.iter().enumerate() {
            l.y = top + at as f32 * 14.0;
            l.text(META_VALUE_X, 10.5, key == "partner", Color::Text, line);
        }
        l.y = top + 16.0 + (labels.len().max(values.len()).max(1) - 1) as f32 * 14.0;
    }
    l.y += 14.0;

    l.text(MARGIN, 13.0, true, Color::Text, &label("lines_title"));
    l.y += 10.0;
    if doc.lines.is_empty() {
        l.y += 8.0;
        l.text(MARGIN, 10.0, false, Color::Muted, &label("no_lines"));
        l.y += 16.0;
    } else {
        let column = |key: &str, align| Column {
            header: label(key),
            align,
            whole_words: false,
        };
        // Rates are read whole: a partner recomputes the row from them (issue 14).
        let whole = |key: &str| Column {
            header: label(key),
            align: Align::Right,
            whole_words: true,
        };
        let columns = [
            column("category", Align::Left),
            column("booking", Align::Left),
            column("lines", Align::Right),
            column("revenue", Align::Right),
            whole("rate"),
            whole("fx_rate"),
            Column {
                header: format!("{} ({})", label("earning"), doc.currency),
                align: Align::Right,
                whole_words: false,
            },
        ];
        let rows: Vec<Vec<String>> = doc
            .lines
            .iter()
            .map(|line| {
                vec![
                    line.category.clone(),
                    line.booking_label.clone(),
                    line.lines.to_string(),
                    line.revenue.clone(),
                    line.rate_label.clone(),
                    line.fx_label.clone(),
                    line.earning.clone(),
                ]
            })
            .collect();
        l.table(&columns, &rows);
        l.y += 10.0;
    }
    l.y += 14.0;

    l.need(150.0);
    l.text(MARGIN, 13.0, true, Color::Text, &label("summary_title"));
    l.y += 20.0;
    for (key, value) in [
        ("earned", &doc.earned),
        ("adjustments", &doc.adjustments),
        ("released", &doc.released),
        ("carried_in", &doc.carried_in),
        ("payable", &doc.payable),
        ("carried", &doc.carried),
        ("held", &doc.held),
    ] {
        let total = key == "payable";
        if total {
            let y = l.y - 11.0;
            l.rule(y, 1.2, Color::Text);
        }
        l.label_value(&label(key), value, 10.0, total, RIGHT - 4.0);
        l.y += 2.5;
    }
    l.y += 8.0;

    let status_lines = l.wrap(
        &format!("{}: {}", label("status"), doc.status_text),
        10.0,
        true,
        RIGHT - MARGIN - 20.0,
    );
    let box_height = 10.0 + status_lines.len() as f32 * 14.5;
    l.need(box_height + 10.0);
    let box_y = l.y;
    let accent = if doc.payout_status == Some(PayoutStatus::Held) {
        Color::Warning
    } else {
        Color::Accent
    };
    l.ops().push(Op::Rect {
        x: MARGIN,
        y: box_y,
        w: RIGHT - MARGIN,
        h: box_height,
        color: Color::Band,
    });
    l.ops().push(Op::Rect {
        x: MARGIN,
        y: box_y,
        w: 4.0,
        h: box_height,
        color: accent,
    });
    l.y += 16.0;
    for line in status_lines {
        l.text(MARGIN + 14.0, 10.0, true, Color::Text, &line);
        l.y += 14.5;
    }
    l.y += 12.0;

    for (title, items) in [
        ("eligibility_title", &doc.ineligible),
        ("holds_title", &doc.holds),
    ] {
        if items.is_empty() {
            continue;
        }
        l.need(40.0);
        l.paragraph(MARGIN, 12.0, true, Color::Text, &label(title));
        l.y += 4.0;
        for hold in items {
            l.paragraph(
                MARGIN + 10.0,
                10.0,
                true,
                Color::Warning,
                &format!("• {}", hold.text),
            );
            l.paragraph(MARGIN + 20.0, 9.5, false, Color::Text, &hold.action);
            l.y += 4.0;
        }
    }
    l.y += 10.0;
    l.paragraph(MARGIN, 9.5, false, Color::Text, &doc.payment_terms);
    l.y += 6.0;
    l.paragraph(MARGIN, 8.0, false, Color::Muted, &label("footnote"));
    l.y += 2.0;
    l.paragraph(MARGIN, 8.0, false, Color::Muted, &label("fx_footnote"));

    l
}

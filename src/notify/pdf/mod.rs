//! PDF statements drawn with krilla in an embedded subset of Noto Sans CJK (Latin, Hangul,
//! kana and JIS kanji; `scripts/subset-fonts.sh`), so partner names in any of those scripts
//! render on every host without installing fonts. Layout is computed first as pages of drawing
//! operations, then written; no clock or random value enters the file, so the same statement
//! always gives the same bytes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use krilla::text::{Font, GlyphId, KrillaGlyph};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};

use super::statement::StatementDoc;
use super::templates::{Language, Templates};
use crate::domain::reasons::PayoutStatus;
use table::{Align, Column};

mod table;
#[cfg(test)]
mod tests;
mod write;

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

/// A character's glyph in one face: its id (0, `.notdef`, where the face has none) and its
/// advance at 1 pt.
#[derive(Clone, Copy)]
struct Glyph {
    id: u32,
    advance: f32,
}

/// One font, with every character it maps looked up once, at load: drawing and measuring read
/// these tables only, with no lock and no font parsing per text.
struct Face {
    font: Font,
    /// The glyphs of U+0000..U+0250, indexed by code point.
    latin: Vec<Glyph>,
    /// Every other character the font maps.
    other: HashMap<char, Glyph>,
    /// What a character the font does not map is measured as (`.notdef`'s advance).
    missing: Glyph,
}

/// Characters looked up by index rather than hashed.
const PRECOMPUTED_CHARS: u32 = 0x250;

impl Face {
    fn new(data: &'static [u8]) -> Result<Self, PdfError> {
        let font = Font::new(data.into(), 0).ok_or(PdfError::Font)?;
        let face = skrifa::FontRef::new(data).map_err(|_| PdfError::Font)?;
        let metrics = face.glyph_metrics(Size::new(1000.0), LocationRef::default());
        let glyph = |id: skrifa::GlyphId| Glyph {
            id: id.to_u32(),
            advance: metrics.advance_width(id).unwrap_or(500.0) / 1000.0,
        };
        let missing = glyph(skrifa::GlyphId::NOTDEF);
        let mut latin = vec![missing; PRECOMPUTED_CHARS as usize];
        let mut other = HashMap::new();
        for (code, id) in face.charmap().mappings() {
            match (latin.get_mut(code as usize), char::from_u32(code)) {
                (Some(slot), _) => *slot = glyph(id),
                (None, Some(ch)) => {
                    other.insert(ch, glyph(id));
                }
                (None, None) => {}
            }
        }
        Ok(Self {
            font,
            latin,
            other,
            missing,
        })
    }

    fn glyph(&self, ch: char) -> Glyph {
        match self.latin.get(ch as usize) {
            Some(glyph) => *glyph,
            None => self.other.get(&ch).copied().unwrap_or(self.missing),
        }
    }

    fn covers(&self, text: &str) -> bool {
        self.uncovered(text).is_none()
    }

    /// The first character of `text` this face would draw as a blank, if any.
    fn uncovered(&self, text: &str) -> Option<char> {
        text.chars()
            .find(|&ch| !invisible(ch) && self.glyph(ch).id == 0)
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        text.chars()
            .filter(|&ch| !invisible(ch))
            .map(|ch| self.glyph(ch).advance)
            .sum::<f32>()
            * size
    }

    /// `text` (composed by `drawn`) as the glyphs to draw: one per character, left to right,
    /// without ligatures or kerning, at exactly the advances `width` measures, so a text is drawn as wide as it was
    /// laid out. (krilla's own `draw_text` shapes with rustybuzz, parsing the whole font for
    /// every text drawn: most of a statement's rendering time.)
    fn glyphs(&self, text: &str) -> Vec<KrillaGlyph> {
        text.char_indices()
            .filter(|&(_, ch)| !invisible(ch))
            .map(|(at, ch)| {
                let glyph = self.glyph(ch);
                KrillaGlyph::new(
                    GlyphId::new(glyph.id),
                    glyph.advance,
                    0.0,
                    0.0,
                    0.0,
                    at..at + ch.len_utf8(),
                    None,
                )
            })
            .collect()
    }
}

/// Characters never drawn and taking no room: controls and Unicode's default-ignorable code
/// points (soft hyphen, zero-width joiners and spaces, bidi marks, Hangul fillers, variation
/// selectors, the BOM), which a shaper hides.
fn invisible(ch: char) -> bool {
    ch.is_control()
        || matches!(ch,
            '\u{AD}' | '\u{34F}' | '\u{61C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// `text` as it is drawn: composed (NFC). Without a shaper, a name stored decomposed (Hangul
/// jamo, e + U+0301, か + U+3099, as macOS writes them) would otherwise be drawn as loose
/// letters and marks; composed, it uses the font's precomposed glyphs.
fn drawn(text: &str) -> Cow<'_, str> {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => Cow::Borrowed(text),
        _ => Cow::Owned(text.nfc().collect()),
    }
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
                    while NO_LINE_START.contains(moved[0]) && current.chars().count() > 1 {
                        match current.pop() {
                            Some(before) => moved.insert(0, before),
                            None => break,
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
    let mut l = Layout::new(fonts.for_text(&all_text));

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

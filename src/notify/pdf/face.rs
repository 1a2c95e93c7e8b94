//! One embedded font face: every character it maps, with its glyph and advance, looked up once
//! at load; and the text normalisation drawing needs without a shaper.

use std::borrow::Cow;
use std::collections::HashMap;

use krilla::text::{Font, GlyphId, KrillaGlyph};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};

use super::PdfError;

/// A character's glyph in one face: its id (0, `.notdef`, where the face has none) and its
/// advance at 1 pt.
#[derive(Clone, Copy)]
pub(super) struct Glyph {
    id: u32,
    advance: f32,
}

/// One font, with every character it maps looked up once, at load: drawing and measuring read
/// these tables only, with no lock and no font parsing per text.
pub(super) struct Face {
    pub(super) font: Font,
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
    pub(super) fn new(data: &'static [u8]) -> Result<Self, PdfError> {
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

    pub(super) fn glyph(&self, ch: char) -> Glyph {
        match self.latin.get(ch as usize) {
            Some(glyph) => *glyph,
            None => self.other.get(&ch).copied().unwrap_or(self.missing),
        }
    }

    pub(super) fn covers(&self, text: &str) -> bool {
        self.uncovered(text).is_none()
    }

    /// The first character of `text` this face would draw as a blank, if any.
    pub(super) fn uncovered(&self, text: &str) -> Option<char> {
        text.chars()
            .find(|&ch| !invisible(ch) && self.glyph(ch).id == 0)
    }

    pub(super) fn width(&self, text: &str, size: f32) -> f32 {
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
    pub(super) fn glyphs(&self, text: &str) -> Vec<KrillaGlyph> {
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
pub(super) fn invisible(ch: char) -> bool {
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
pub(super) fn drawn(text: &str) -> Cow<'_, str> {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => Cow::Borrowed(text),
        _ => Cow::Owned(text.nfc().collect()),
    }
}

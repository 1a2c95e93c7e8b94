//! The layout's own text boxes never intersect, whatever the length of names, categories and
//! amounts (15-digit KRW figures), converted rows with their FX rate and late rows with their
//! billing month, in every language.

use super::*;
use crate::notify::statement::{HoldDoc, LineDoc, NO_FX, StatementDoc};
use crate::notify::templates::Language;

/// (page, left, top, right, bottom, text) of every text the layout draws.
fn text_boxes(layout: &Layout<'_>) -> Vec<(usize, f32, f32, f32, f32, String)> {
    let mut boxes = Vec::new();
    for (page, ops) in layout.pages.iter().enumerate() {
        for op in ops {
            if let Op::Text {
                x,
                y,
                size,
                bold,
                text,
                ..
            } = op
            {
                let width = layout.fonts.face(*bold).width(text, *size);
                // From the ascender to the descender around the baseline `y`.
                boxes.push((
                    page,
                    *x,
                    y - size * 0.88,
                    x + width,
                    y + size * 0.12,
                    text.clone(),
                ));
            }
        }
    }
    boxes
}

fn long_statement(language: &str) -> StatementDoc {
    let templates = Templates::load();
    let label = |key: &str| templates.label(Language::from_code(language), key);
    let amount = "-123,456,789,012,345 KRW".to_owned();
    // A late row: its booking says the month it was billed in, in the statement's language.
    let late = label("booking_adjustment_billed").replace("{month}", "2026-09");
    let fx = label("fx_rate_value")
        .replace("{rate}", "1387.123456789012")
        .replace("{period}", "2026-09");
    let line = |category: &str, booking: &str, rate: &str, fx: &str| LineDoc {
        category: category.to_owned(),
        booking_label: booking.to_owned(),
        lines: 1_234_567,
        revenue: "987,654,321,098,765.00 USD".to_owned(),
        rate_label: rate.to_owned(),
        fx_label: fx.to_owned(),
        earning: "-123,456,789,012,345".to_owned(),
    };
    let hold = HoldDoc {
        code: "TAX_PROFILE_INCOMPLETE".into(),
        text: "Tax profile incomplete ".repeat(6),
        action: "Complete your tax profile in the partner portal. ".repeat(8),
    };
    StatementDoc {
        language: language.to_owned(),
        statement_number: "1000001-2026-10".into(),
        issued_on: "2026-11-03".into(),
        issuer_name: "Partner Incentives Finance of a Very Long Legal Entity Name Worldwide".into(),
        issuer_address: vec!["One Microsoft Place, South County Business Park, Leopardstown, Dublin 18, D18 P521, Ireland".into(), "Ireland".into()],
        issuer_email: "partner-incentives-finance-statements@payout.example".into(),
        payment_terms: "Payable amounts are paid by bank transfer within 30 days. ".repeat(4),
        partner_id: "1000001".into(),
        partner_name: "Contoso Cloud Distribution International Holdings and Partners Worldwide Limited Liability Company 서울 클라우드 파트너스".into(),
        program_id: "csp-indirect".into(),
        program_name: "CSP Indirect Provider Incentive for Cloud Solution Providers Worldwide".into(),
        period: "2026-10".into(),
        currency: "KRW".into(),
        lines: vec![
            line("azure-consumption-reserved-instances-and-savings-plans-enterprise", &late, "not incentivised", NO_FX),
            line("인센티브대상아님인센티브대상아님인센티브대상아님", &late, "0.0312345678", &fx),
            line("azure-consumption-reserved-instances-and-savings-plans-enterprise-late", &late, "0.0312345678", &fx),
            line("m365", &label("booking_earned"), "not eligible", NO_FX),
        ],
        earned: amount.clone(),
        adjustments: amount.clone(),
        released: amount.clone(),
        carried_in: amount.clone(),
        payable: amount.clone(),
        carried: amount.clone(),
        held: amount,
        status: "HELD".into(),
        payout_status: Some(crate::domain::reasons::PayoutStatus::Held),
        status_text: "Held: amounts are kept until the items below are resolved. ".repeat(5),
        holds: vec![hold.clone(), hold.clone()],
        ineligible: vec![hold],
    }
}

#[test]
fn no_two_texts_of_a_statement_overlap_with_long_names_and_15_digit_amounts() {
    let templates = Templates::load();
    let fonts = FontSet::load().unwrap();
    for language in ["en", "ko", "ja", "de"] {
        let doc = long_statement(language);
        let layout = layout_statement(&doc, &templates, &fonts);
        let boxes = text_boxes(&layout);
        assert!(boxes.len() > 40, "{language}: {} texts", boxes.len());
        for (at, a) in boxes.iter().enumerate() {
            assert!(
                a.1 >= MARGIN - 0.5 && a.3 <= RIGHT + 0.5,
                "{language}: {a:?} leaves the page"
            );
            for b in &boxes[at + 1..] {
                let overlap = a.0 == b.0 && a.1 < b.3 && b.1 < a.3 && a.2 < b.4 && b.2 < a.4;
                assert!(!overlap, "{language}: {a:?} overlaps {b:?}");
            }
        }
        // The rate and the FX rate are drawn whole, never rounded or cut between characters.
        for exact in ["1387.123456789012", "0.0312345678"] {
            assert!(
                boxes.iter().any(|b| b.5 == exact),
                "{language}: {exact} is not drawn in one piece"
            );
        }
        // And the PDF is still written from it.
        let pdf = render_statement_pdf(&doc, &templates, &fonts).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
    }
}

#[test]
fn statements_are_tagged_pdf_with_their_language() {
    let templates = Templates::load();
    let fonts = FontSet::load().unwrap();
    for language in ["en", "ko", "ja", "de"] {
        let pdf = render_statement_pdf(&long_statement(language), &templates, &fonts).unwrap();
        let contains = |needle: &str| pdf.windows(needle.len()).any(|w| w == needle.as_bytes());
        // What `pdfinfo` reads as `Tagged: yes`: a structure tree and marked content.
        assert!(contains("/StructTreeRoot"), "{language}: no structure tree");
        assert!(contains("/Marked true"), "{language}: not marked");
        assert!(
            contains(&format!("/Lang ({language})")),
            "{language}: no language"
        );
    }
}

#[test]
fn a_character_the_fonts_lack_is_refused_not_printed_as_a_blank() {
    let templates = Templates::load();
    let fonts = FontSet::load().unwrap();
    // 麤 is outside the JIS kanji the embedded subset carries; 札幌 is inside.
    let mut doc = long_statement("ja");
    doc.partner_name = "麤 札幌".to_owned();
    match render_statement_pdf(&doc, &templates, &fonts) {
        Err(PdfError::MissingGlyph(ch)) => assert_eq!(ch, '麤'),
        other => panic!(
            "expected a missing glyph, got {:?}",
            other.map(|pdf| pdf.len())
        ),
    }
    doc.partner_name = "札幌".to_owned();
    assert!(render_statement_pdf(&doc, &templates, &fonts).is_ok());
}

#[test]
fn text_is_drawn_one_glyph_per_character_at_the_advances_the_layout_measures() {
    let fonts = FontSet::load().unwrap();
    for (text, faces) in [
        ("Contoso Cloud Distribution 1,307.74 USD", &fonts.latin),
        ("서울 클라우드 파트너스 札幌 Müller", &fonts.cjk),
    ] {
        for bold in [false, true] {
            let face = faces.face(bold);
            let glyphs = face.glyphs(text);
            assert_eq!(glyphs.len(), text.chars().count(), "{text}");
            for (glyph, (at, ch)) in glyphs.iter().zip(text.char_indices()) {
                // Each glyph names its character, so the PDF's text can be extracted.
                assert_eq!(&text[glyph.text_range.clone()], ch.to_string(), "{text}");
                assert_eq!(glyph.text_range.start, at);
                assert!(
                    ch == ' ' || glyph.glyph_id.to_u32() != 0,
                    "{ch:?} has a glyph"
                );
            }
            let drawn: f32 = glyphs.iter().map(|g| g.x_advance).sum::<f32>() * 10.0;
            assert!((drawn - face.width(text, 10.0)).abs() < 1e-3, "{text}");
        }
    }
    assert_eq!(fonts.latin.regular.uncovered("Seoul 서울"), Some('서'));
    assert_eq!(fonts.cjk.regular.uncovered("Seoul 서울"), None);
}

#[test]
fn a_wrapped_line_never_starts_with_closing_punctuation() {
    let fonts = FontSet::load().unwrap();
    let layout = Layout::new(&fonts.cjk);
    // Widths where the break falls just before the 。 of each sentence.
    let text = "契約が期間の最終日を含む最初の期間から資格が回復します。".repeat(3);
    for width in (60..400).step_by(7) {
        let lines = layout.wrap(&text, 9.5, false, width as f32);
        assert_eq!(lines.concat(), text, "nothing lost at {width}");
        for line in &lines {
            let first = line.chars().next().unwrap();
            assert!(!NO_LINE_START.contains(first), "{width}: {line}");
            assert!(
                layout.width(line, 9.5, false) <= width as f32,
                "{width}: {line}"
            );
        }
    }
}

#[test]
fn decomposed_text_is_drawn_composed_and_invisible_characters_take_no_room() {
    let fonts = FontSet::load().unwrap();
    let mut layout = Layout::new(&fonts.cjk);
    // Hangul jamo, e + U+0301 and か + U+3099 as macOS stores them; a soft hyphen; a filler.
    for (stored, shown) in [
        ("\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8}", "한국"),
        ("Cafe\u{301} Mu\u{308}ller", "Café Müller"),
        ("\u{304B}\u{3099}", "が"),
        ("Rechen\u{AD}zentrum\u{3164}", "Rechen\u{AD}zentrum\u{3164}"),
    ] {
        layout.text(MARGIN, 10.0, false, Color::Text, stored);
        let Some(Op::Text { text, .. }) = layout.ops().last() else {
            panic!("a text op")
        };
        assert_eq!(text, shown);
        assert_eq!(
            layout.width(stored, 10.0, false),
            layout.width(shown, 10.0, false)
        );
    }
    assert!(
        layout.check_glyphs().is_ok(),
        "every composed character has a glyph"
    );
    let face = fonts.cjk.face(false);
    assert_eq!(
        face.width("Rechen\u{AD}zentrum\u{3164}", 10.0),
        face.width("Rechenzentrum", 10.0)
    );
    assert_eq!(
        face.glyphs("Rechen\u{AD}zentrum").len(),
        "Rechenzentrum".len()
    );
}

#[test]
fn a_break_before_two_closing_marks_carries_back_to_a_letter() {
    let fonts = FontSet::load().unwrap();
    let layout = Layout::new(&fonts.cjk);
    let text = "契約を更新してください（パートナー ポータル）。「確認」！？".repeat(4);
    for width in (60..400).step_by(3) {
        let lines = layout.wrap(&text, 9.5, false, width as f32);
        // A run of marks longer than a line is still broken within the width.
        for line in layout.wrap(&"。".repeat(40), 9.5, false, width as f32) {
            assert!(
                layout.width(&line, 9.5, false) <= width as f32,
                "{width}: {line}"
            );
        }
        for line in &lines {
            let first = line.chars().next().unwrap();
            assert!(!NO_LINE_START.contains(first), "{width}: {line}");
        }
    }
}

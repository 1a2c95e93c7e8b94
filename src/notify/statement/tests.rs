//! Statement rows as a partner reads them: figures formatted, FX rates shown exactly and
//! recomputable, late rows with their billing month, and rows refused when their FX is missing.
//! Test code only: the reference rounds with `rust_decimal`.

use super::*;
use rust_decimal::{Decimal, RoundingStrategy};

fn row(booking: Booking, month: &str, currency: &str, fx: Option<&str>) -> StatementLineRecord {
    StatementLineRecord {
        booking: booking.as_str().to_owned(),
        product_category: "azure".to_owned(),
        line_currency: currency.to_owned(),
        rate: Some("0.0375".to_owned()),
        lines: 2,
        revenue: "4250.50".to_owned(),
        earning: "148.621530".to_owned(),
        billing_month: Some(month.to_owned()),
        fx_rate: fx.map(str::to_owned),
        fx_period: fx.map(|_| month.to_owned()),
    }
}

fn record(lines: Vec<StatementLineRecord>) -> StatementRecord {
    StatementRecord {
        period: "2026-10".into(),
        partner_id: "1000002".into(),
        partner_name: "Fabrikam".into(),
        program_id: "csp-direct".into(),
        program_name: "CSP Direct".into(),
        currency: "EUR".into(),
        language: "en".into(),
        earned: "148.62".into(),
        adjustments: "0.00".into(),
        released: "0.00".into(),
        carried_in: "0.00".into(),
        payable: "148.62".into(),
        carried: "0.00".into(),
        held: "0.00".into(),
        status: "PAYABLE".into(),
        hold_reasons: String::new(),
        lines,
        eligibility_reasons: String::new(),
        enrolled_on: None,
        issued_on: None,
        issuer: None,
        pdf_sha256: None,
    }
}

/// A displayed number without its grouping and currency code.
fn shown(text: &str) -> Decimal {
    let number = text.split(' ').next().unwrap_or_default().replace(',', "");
    number
        .parse()
        .unwrap_or_else(|_| panic!("a number: {text}"))
}

#[test]
fn a_converted_row_shows_the_fx_rate_that_recomputes_its_earning_as_displayed() {
    // 4,250.50 USD × 0.0375 × 0.932417 = 148.621530… EUR, rounded per line to 6 places.
    let fx = "0.932417";
    let exact = Decimal::new(425050, 2) * Decimal::new(375, 4) * Decimal::new(932417, 6);
    let mut line = row(Booking::Earned, "2026-10", "USD", Some(fx));
    line.earning = exact
        .round_dp_with_strategy(6, RoundingStrategy::MidpointNearestEven)
        .to_string();
    let doc = StatementDoc::new(&record(vec![line]), &Templates::load()).unwrap();
    let shown_row = &doc.lines[0];
    assert_eq!(shown_row.fx_label, "0.932417 (2026-10)");
    assert_eq!(shown_row.revenue, "4,250.50 USD");
    let recomputed =
        shown(&shown_row.revenue) * shown(&shown_row.rate_label) * shown(&shown_row.fx_label);
    assert_eq!(
        recomputed.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven),
        shown(&shown_row.earning),
        "{shown_row:?}"
    );
    assert_eq!(shown_row.earning, "148.62");
}

#[test]
fn the_fx_rate_is_shown_exactly_as_the_fx_file_wrote_it() {
    let line = row(Booking::Earned, "2026-10", "USD", Some("0.93241700000000"));
    let doc = StatementDoc::new(&record(vec![line]), &Templates::load()).unwrap();
    assert_eq!(doc.lines[0].fx_label, "0.93241700000000 (2026-10)");
}

#[test]
fn a_late_row_shows_its_billing_month_in_every_language() {
    let templates = Templates::load();
    for (language, expected) in [
        ("en", "Late revenue (adjustment) · billed 2026-09"),
        ("ko", "지연 매출(조정) · 2026-09 청구분"),
        ("ja", "遅延売上（調整）・2026-09 請求分"),
        (
            "de",
            "Nachträglicher Umsatz (Korrektur) · abgerechnet 2026-09",
        ),
    ] {
        let mut record = record(vec![
            row(Booking::Adjustment, "2026-09", "USD", Some("0.94")),
            row(Booking::Earned, "2026-10", "EUR", None),
        ]);
        record.language = language.to_owned();
        let doc = StatementDoc::new(&record, &templates).unwrap();
        assert_eq!(doc.lines[0].booking_label, expected);
        assert_eq!(doc.lines[0].fx_label, "0.94 (2026-09)");
        // A row in the payout currency has no FX rate.
        assert_eq!(doc.lines[1].fx_label, NO_FX);
        let html = templates
            .render_statement_html(&doc, Language::from_code(language))
            .unwrap();
        assert!(html.contains(expected), "{language}");
    }
}

#[test]
fn a_converted_row_without_its_fx_rate_is_refused_not_shown_blank() {
    let templates = Templates::load();
    let refused = |line: StatementLineRecord| {
        StatementDoc::new(&record(vec![line]), &templates)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let error = refused(row(Booking::Earned, "2026-10", "USD", None));
    assert!(error.contains("without its FX rate"), "{error}");
    let error = refused(row(Booking::Earned, "2026-10", "USD", Some("")));
    assert!(error.contains("empty FX rate"), "{error}");
    let error = refused(row(Booking::Earned, "2026-10", "EUR", Some("1.1")));
    assert!(error.contains("not converted"), "{error}");
    let mut half = row(Booking::Earned, "2026-10", "USD", Some("0.9"));
    half.fx_period = None;
    assert!(refused(half).contains("without its period"));
    // A row closed before migration 0013 recorded neither month nor FX: shown without.
    let mut legacy = row(Booking::Adjustment, "2026-10", "USD", None);
    legacy.billing_month = None;
    let doc = StatementDoc::new(&record(vec![legacy]), &templates).unwrap();
    assert_eq!(doc.lines[0].fx_label, "");
    assert_eq!(doc.lines[0].booking_label, "Late revenue (adjustment)");
}

#[test]
fn revenue_shows_the_currency_decimals_and_every_digit_that_is_not_a_zero() {
    assert_eq!(trim_to_minor("3500000.00", 0), "3500000");
    assert_eq!(trim_to_minor("3500000.50", 0), "3500000.5");
    assert_eq!(trim_to_minor("12.500000", 2), "12.50");
    assert_eq!(trim_to_minor("12.5", 3), "12.5");
    assert_eq!(trim_to_minor("-7.123400", 3), "-7.1234");
    assert_eq!(trim_to_minor("900000", 0), "900000");
}

#[test]
fn thousands_are_grouped() {
    assert_eq!(group_thousands("1207.74"), "1,207.74");
    assert_eq!(group_thousands("-1234567"), "-1,234,567");
    assert_eq!(group_thousands("999"), "999");
    assert_eq!(group_thousands("0.000"), "0.000");
}

use super::*;
use proptest::prelude::*;

#[test]
fn currency_table_agrees_with_iso_4217() {
    for code in [
        "USD", "EUR", "JPY", "KRW", "GBP", "KWD", "XAU", "XDR", "ZZZ", "AAA",
    ] {
        assert_eq!(
            Currency::parse(code).map(Currency::code),
            iso_currency::Currency::from_code(code).map(|c| c.code()),
            "{code}"
        );
    }
    for bad in ["usd", "US", "USDD", "U$D", ""] {
        assert_eq!(Currency::parse(bad), None, "{bad}");
    }
}

#[test]
fn validates_amount_text_before_parsing() {
    assert_eq!(parse_amount_micro("1234.5678"), Ok(1_234_567_800));
    assert_eq!(parse_amount_micro("-3.1"), Ok(-3_100_000));
    assert_eq!(parse_amount_micro("0.000001"), Ok(1));
    assert_eq!(
        parse_amount_micro("1.0000000"),
        Err(DecimalTextError::TooManyPlaces(6))
    );
    for bad in [
        "1e3", "1,234.50", "NaN", "+5", "", ".5", "5.", "- 5", " 5", "0x10", "١٢",
    ] {
        assert_eq!(
            parse_amount_micro(bad),
            Err(DecimalTextError::NotDecimal),
            "{bad}"
        );
    }
    assert_eq!(
        parse_amount_micro("99999999999999999999"),
        Err(DecimalTextError::OutOfRange)
    );
}

#[test]
fn no_currency_and_the_test_code_are_not_money() {
    assert!(iso_currency::Currency::from_code("XXX").is_some());
    for code in NOT_MONEY {
        assert_eq!(Currency::parse(code), None, "{code}");
    }
}

#[test]
fn currencies_know_their_minor_units() {
    assert_eq!(Currency::parse("USD").unwrap().minor_units(), Ok(2));
    assert_eq!(Currency::parse("JPY").unwrap().minor_units(), Ok(0));
    assert_eq!(Currency::parse("KWD").unwrap().minor_units(), Ok(3));
    let gold = Currency::parse("XAU").unwrap();
    assert_eq!(gold.minor_units(), Err(NoMinorUnits(gold)));
    assert_eq!(
        gold.minor_units().unwrap_err().to_string(),
        "XAU has no minor units: it cannot be a payout currency"
    );
    assert!(Currency::parse("ABC").is_none());
    assert!(Currency::parse("usd").is_none());
}

#[test]
fn converted_lines_round_half_even_to_six_places() {
    // 1.000001 × 0.5 × 1 = 0.5000005 → 0.500000 (even); 1.000003 × 0.5 = 0.5000015 → 0.500002
    let rate = Rate::parse("0.5").unwrap().scaled;
    let one = Rate::parse("1").unwrap().scaled;
    assert_eq!(
        format_scaled(
            line_earning(1_000_001, rate, Some(one)).unwrap(),
            EARNING_SCALE,
            2
        ),
        "0.50"
    );
    assert_eq!(
        format_scaled(
            line_earning(1_000_003, rate, Some(one)).unwrap(),
            EARNING_SCALE,
            2
        ),
        "0.500002"
    );
    // Unconverted lines stay exact.
    assert_eq!(
        format_scaled(
            line_earning(1_000_001, rate, None).unwrap(),
            EARNING_SCALE,
            2
        ),
        "0.5000005"
    );
}

#[test]
fn extreme_lines_need_more_than_28_digits_and_stay_exact() {
    let amount = i64::MAX; // 9223372036854.775807
    let rate = Rate::parse("0.1234567891").unwrap().scaled;
    let fx = Rate::parse("1479.1234567891").unwrap().scaled;
    let earning = line_earning(amount, rate, Some(fx)).unwrap();
    // Checked independently: 9223372036854.775807 × 0.1234567891 × 1479.1234567891
    // = 1684259977445454.8238251042..., rounded to 6 places (Python decimal, 80 digits).
    assert_eq!(
        format_scaled(earning, EARNING_SCALE, 6),
        "1684259977445454.823825"
    );
}

fn currency(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

fn money(scaled: i128, code: &str) -> Money {
    let mut sum = ExactSum::default();
    sum.add(scaled);
    Money::new(sum, currency(code))
}

fn payable(text: &str, code: &str) -> Payable {
    Payable::parse(text, currency(code)).unwrap()
}

#[test]
fn period_sums_round_half_even_to_minor_units() {
    let unit = |places: u32| 10i128.pow(EARNING_SCALE - places);
    let round = |m: Money| m.round_to_minor().unwrap().to_string();
    assert_eq!(round(money(25 * unit(3), "USD")), "0.02");
    assert_eq!(round(money(35 * unit(3), "USD")), "0.04");
    assert_eq!(round(money(-5 * unit(1), "JPY")), "0");
    assert_eq!(round(money(12_345 * unit(4), "KWD")), "1.234");
    assert_eq!(round(money(12_355 * unit(4), "KWD")), "1.236");
    let gold = currency("XAU");
    assert_eq!(
        money(1, "XAU").round_to_minor(),
        Err(MoneyError::NoMinorUnits(NoMinorUnits(gold)))
    );
}

#[test]
fn payables_show_exactly_the_minor_units_without_negative_zero() {
    assert_eq!(payable("1234.5", "USD").to_string(), "1234.50");
    assert_eq!(payable("-3.1", "USD").to_string(), "-3.10");
    assert_eq!(payable("5000", "JPY").to_string(), "5000");
    assert_eq!(payable("-0.00", "USD").to_string(), "0.00");
    assert_eq!(payable("7", "KWD").to_string(), "7.000");
    assert_eq!(payable("-0.005", "KWD").to_string(), "-0.005");
}

#[test]
fn payable_text_with_more_places_than_the_currency_is_refused_not_rounded() {
    let usd = currency("USD");
    assert_eq!(
        Payable::parse("0.001", usd),
        Err(MoneyError::Text(DecimalTextError::TooManyPlaces(2)))
    );
    assert_eq!(
        Payable::parse("1.5", currency("JPY")),
        Err(MoneyError::Text(DecimalTextError::TooManyPlaces(0)))
    );
    assert_eq!(
        Payable::parse("1e3", usd),
        Err(MoneyError::Text(DecimalTextError::NotDecimal))
    );
}

#[test]
fn mixed_currencies_are_refused() {
    let (usd, eur) = (currency("USD"), currency("EUR"));
    let mixed = Err(MoneyError::MixedCurrencies(usd, eur));
    assert_eq!(payable("1", "USD").checked_add(payable("1", "EUR")), mixed);
    assert_eq!(payable("1", "USD").checked_sub(payable("1", "EUR")), mixed);
    assert_eq!(
        payable("1", "USD").checked_cmp(payable("1", "EUR")),
        mixed.map(|_: Payable| std::cmp::Ordering::Equal)
    );
    assert_eq!(
        money(1, "USD").checked_add(money(1, "EUR")),
        Err(MoneyError::MixedCurrencies(usd, eur))
    );
    assert_eq!(
        Payable::sum([payable("1", "USD"), payable("2", "EUR")], usd),
        Err(MoneyError::MixedCurrencies(usd, eur))
    );
    assert_eq!(
        Payable::sum([payable("1.25", "USD"), payable("2", "USD")], usd)
            .unwrap()
            .to_string(),
        "3.25"
    );
    assert_eq!(
        payable("-1", "USD").checked_cmp(payable("0.99", "USD")),
        Ok(std::cmp::Ordering::Less)
    );
}

#[test]
fn payable_addition_overflow_is_an_error() {
    let usd = currency("USD");
    let max = Payable::from_minor_units(i128::MAX, usd).unwrap();
    assert_eq!(
        max.checked_add(payable("0.01", "USD")),
        Err(MoneyError::Overflow(Overflow))
    );
    let min = Payable::from_minor_units(i128::MIN, usd).unwrap();
    assert_eq!(
        min.checked_sub(payable("0.01", "USD")),
        Err(MoneyError::Overflow(Overflow))
    );
}

#[test]
fn line_earnings_round_for_display_from_their_exact_text() {
    let usd = currency("USD");
    let shown = |text: &str| Money::round_exact_text(text, usd).map(|p| p.to_string());
    assert_eq!(shown("0.125").as_deref(), Some("0.12"));
    assert_eq!(shown("0.135").as_deref(), Some("0.14"));
    assert_eq!(shown("-128.6993565").as_deref(), Some("-128.70"));
    assert_eq!(shown("0").as_deref(), Some("0.00"));
    assert_eq!(shown("not incentivised"), None);
}

proptest! {
    #[test]
    fn payable_text_round_trips(units in any::<i64>(), code in prop::sample::select(vec!["USD", "JPY", "KWD"])) {
        let c = currency(code);
        let p = Payable::from_minor_units(i128::from(units), c).unwrap();
        prop_assert_eq!(Payable::parse(&p.to_string(), c), Ok(p));
    }

    #[test]
    fn fast_text_matches_digit_text(value in any::<i128>(), scale in 0u32..=16, min_places in 0u32..=8) {
        let reference = format_digits(value < 0, value.unsigned_abs().to_string(), scale, min_places);
        prop_assert_eq!(format_scaled(value, scale, min_places), reference);
    }

    #[test]
    fn amount_text_round_trips(units in any::<i64>()) {
        let text = format_scaled(i128::from(units), AMOUNT_SCALE, 0);
        prop_assert_eq!(parse_amount_micro(&text), Ok(units));
    }

    #[test]
    fn rounding_a_sum_is_within_half_a_minor_unit(parts in proptest::collection::vec(-10i128.pow(24)..10i128.pow(24), 1..50), minor in 0u32..4) {
        let mut sum = ExactSum::default();
        let mut exact = I256::ZERO;
        for p in &parts { sum.add(*p); exact += I256::from(*p); }
        let rounded = sum.round_to_units(minor).unwrap();
        let rounded_scaled = I256::from(rounded) * pow10(EARNING_SCALE - minor);
        let error = (rounded_scaled - exact).abs();
        prop_assert!(error * 2 <= pow10(EARNING_SCALE - minor));
    }
}

//! Property tests of the period computation against a plain `rust_decimal` reference (SPEC §3):
//! random lines, computed whole and split into segments at random points, give the same
//! figures, and the period sums are the reference's, line by line, rounded half-even.
//! Test code only: the reference rounds with `rust_decimal`, which no production code may.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use polars::prelude::*;
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};

use super::{Detail, PeriodComputation, PeriodComputer};
use crate::domain::master::MasterData;
use crate::domain::period::Period;

/// (partner id, payout currency, minor units, eligible).
const PARTNERS: [(&str, &str, u32, bool); 5] = [
    ("2000001", "USD", 2, true),
    ("2000002", "EUR", 2, true),
    ("2000003", "JPY", 0, true),
    ("2000004", "KWD", 3, true),
    // No reseller agreement: its lines count, but earn nothing.
    ("2000005", "USD", 2, false),
];
/// `support` has no rate: non-incentivised revenue.
const CATEGORIES: [&str; 3] = ["azure", "m365", "support"];
/// GBP has no FX rate at all, and JPY -> KWD none either: those lines are FX gaps.
const LINE_CURRENCIES: [&str; 5] = ["USD", "EUR", "JPY", "KWD", "GBP"];
/// (billing month, late): the period's own lines, late lines of the closed month before it
/// (adjustments), and lines of a later month (not the period's).
const MONTHS: [(&str, bool); 3] = [("2026-10", false), ("2026-09", true), ("2026-11", false)];
const PERIOD: &str = "2026-10";

/// Rates by the month their table starts; tables do not inherit (SPEC §7.9).
const RATES: [(&str, &str, &str); 4] = [
    ("2026-01", "azure", "0.05"),
    ("2026-01", "m365", "0.0825"),
    ("2026-10", "azure", "0.0375"),
    ("2026-10", "m365", "0.125"),
];

/// An FX rate: (month, from, to, rate).
type FxRow = (&'static str, &'static str, &'static str, &'static str);

/// Every pair among USD, EUR, JPY, KWD but JPY -> KWD.
fn fx_rates() -> Vec<FxRow> {
    let per_usd = [
        ("USD", "1"),
        ("EUR", "0.932417"),
        ("JPY", "151.25"),
        ("KWD", "0.30715"),
    ];
    let mut rates = Vec::new();
    for (month, nudge) in [("2026-09", "1.000125"), ("2026-10", "1")] {
        for (from, from_per_usd) in per_usd {
            for (to, to_per_usd) in per_usd {
                if from == to || (from, to) == ("JPY", "KWD") {
                    continue;
                }
                let rate = dec(to_per_usd) / dec(from_per_usd) * dec(nudge);
                let rate = rate.round_dp_with_strategy(6, RoundingStrategy::MidpointNearestEven);
                rates.push((month, from, to, leak(rate.normalize().to_string())));
            }
        }
    }
    rates
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn dec(text: &str) -> Decimal {
    text.parse().expect("a decimal literal of the test")
}

/// The master data of the tests, read from files as a run reads them.
static MASTER: LazyLock<(MasterData, Vec<FxRow>)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let write = |name: &str, text: String| {
        std::fs::write(dir.path().join(name), text).expect("writing master data");
    };
    let mut partners = "partner_id,name,partner_type,country,payout_currency,admin_email,enrolled_on,legacy_portal\n".to_owned();
    let mut agreements = "partner_id,kind,status,valid_from,valid_to\n".to_owned();
    for (id, currency, _, eligible) in PARTNERS {
        partners.push_str(&format!(
            "{id},Partner {id},direct,US,{currency},admin@{id}.example,2025-01-01,false\n"
        ));
        agreements.push_str(&format!("{id},mpn,active,2020-01-01,\n"));
        if eligible {
            agreements.push_str(&format!("{id},reseller,active,2020-01-01,\n"));
        }
    }
    write("partners.csv", partners);
    write("agreements.csv", agreements);
    let mut programs = "[[program]]\nid = \"csp-direct\"\nname = \"Direct\"\npartner_type = \"direct\"\nrequired_competencies = []\nmin_payout = { USD = \"100.00\", EUR = \"100.00\", JPY = \"10000\", KWD = \"30.000\" }\n".to_owned();
    for from in ["2026-01", "2026-10"] {
        programs.push_str(&format!("\n[[program.rates]]\nfrom = \"{from}\"\n"));
        for (_, category, rate) in RATES.iter().filter(|(f, ..)| *f == from) {
            programs.push_str(&format!("{category} = \"{rate}\"\n"));
        }
    }
    write("programs.toml", programs);
    let fx = fx_rates();
    let mut fx_text = "period,from_currency,to_currency,rate\n".to_owned();
    for (month, from, to, rate) in &fx {
        fx_text.push_str(&format!("{month},{from},{to},{rate}\n"));
    }
    write("fx_rates.csv", fx_text);
    let master = MasterData::load(dir.path()).expect("the test's master data loads");
    (master, fx)
});

/// One random revenue line: indexes into the tables above, and the amount in 10^-6.
#[derive(Debug, Clone)]
struct Line {
    partner: usize,
    category: usize,
    currency: usize,
    month: usize,
    amount_micro: i64,
}

fn line() -> impl Strategy<Value = Line> {
    (
        0..PARTNERS.len(),
        0..CATEGORIES.len(),
        0..LINE_CURRENCIES.len(),
        0..MONTHS.len(),
        // Up to ±1,000,000 with 6 places: amount × rate × FX stays within `Decimal`'s 28
        // digits, so the reference is exact.
        -1_000_000_000_000i64..=1_000_000_000_000,
    )
        .prop_map(|(partner, category, currency, month, amount_micro)| Line {
            partner,
            category,
            currency,
            month,
            amount_micro,
        })
}

/// The lines as a stored segment holds them (no partner positions: looked up by id).
fn segment(lines: &[Line]) -> DataFrame {
    let text = |name: &str, value: &dyn Fn(usize, &Line) -> String| {
        let values: Vec<String> = lines.iter().enumerate().map(|(i, l)| value(i, l)).collect();
        Column::new(name.into(), values)
    };
    let columns = vec![
        text("record_id", &|i, _| format!("R-{i}")),
        text("partner_id", &|_, l| PARTNERS[l.partner].0.to_owned()),
        text("customer_id", &|i, _| format!("C-{}", i % 7)),
        text("product_category", &|_, l| {
            CATEGORIES[l.category].to_owned()
        }),
        text("billing_month", &|_, l| MONTHS[l.month].0.to_owned()),
        text("amount", &|_, l| {
            Decimal::new(l.amount_micro, 6).to_string()
        }),
        text("currency", &|_, l| LINE_CURRENCIES[l.currency].to_owned()),
        text("source_file", &|_, _| "revenue/test.csv".to_owned()),
        Column::new(
            "amount_micro".into(),
            lines.iter().map(|l| l.amount_micro).collect::<Vec<_>>(),
        ),
        Column::new(
            "line".into(),
            (2..lines.len() as i64 + 2).collect::<Vec<_>>(),
        ),
        Column::new(
            "late".into(),
            lines.iter().map(|l| MONTHS[l.month].1).collect::<Vec<_>>(),
        ),
    ];
    DataFrame::new(lines.len(), columns).expect("the segment's columns have one height")
}

/// Computes the period from `segments`, each with its late lines unbooked.
fn compute(segments: &[DataFrame]) -> PeriodComputation {
    let master = &MASTER.0;
    let period: Period = PERIOD.parse().expect("the test period");
    let mut computer = PeriodComputer::new(master, period, Detail::Statements).expect("computer");
    for frame in segments {
        computer
            .add_segment(frame, true)
            .expect("the segment computes");
    }
    computer
        .finish(&HashMap::new())
        .expect("the period settles")
}

/// (earned, adjustments) per partner id, computed line by line with `rust_decimal` and
/// rounded half-even as SPEC §3 says: converted lines to 6 places, period sums to minor units.
fn reference(lines: &[Line]) -> BTreeMap<&'static str, (Decimal, Decimal)> {
    let fx = &MASTER.1;
    let mut sums: BTreeMap<&str, (Decimal, Decimal)> = BTreeMap::new();
    for line in lines {
        let (partner_id, payout, _, eligible) = PARTNERS[line.partner];
        let (month, late) = MONTHS[line.month];
        if !late && month != PERIOD {
            continue;
        }
        let table = if month >= "2026-10" {
            "2026-10"
        } else {
            "2026-01"
        };
        let category = CATEGORIES[line.category];
        let rate = RATES
            .iter()
            .find(|(from, c, _)| *from == table && *c == category)
            .filter(|_| eligible)
            .map(|(.., rate)| dec(rate));
        let amount = Decimal::new(line.amount_micro, 6);
        let currency = LINE_CURRENCIES[line.currency];
        let earning = match rate {
            None => Decimal::ZERO,
            Some(rate) if currency == payout => amount.checked_mul(rate).expect("exact"),
            Some(rate) => match fx
                .iter()
                .find(|(m, from, to, _)| *m == month && *from == currency && *to == payout)
            {
                Some((.., fx)) => amount
                    .checked_mul(rate)
                    .and_then(|v| v.checked_mul(dec(fx)))
                    .expect("exact")
                    .round_dp_with_strategy(6, RoundingStrategy::MidpointNearestEven),
                None => Decimal::ZERO,
            },
        };
        let sum = sums.entry(partner_id).or_default();
        if late {
            sum.1 += earning;
        } else {
            sum.0 += earning;
        }
    }
    for (partner_id, (earned, adjustments)) in &mut sums {
        let minor = PARTNERS
            .iter()
            .find(|p| p.0 == *partner_id)
            .map_or(0, |p| p.2);
        let round =
            |v: Decimal| v.round_dp_with_strategy(minor, RoundingStrategy::MidpointNearestEven);
        (*earned, *adjustments) = (round(*earned), round(*adjustments));
    }
    sums
}

proptest! {
    #[test]
    fn split_segments_give_the_reference_totals(
        lines in proptest::collection::vec(line(), 1..300),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let whole = segment(&lines);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(lines.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([lines.len()]) {
            pieces.push(whole.slice(from as i64, cut - from));
            from = cut;
        }
        let at_once = compute(std::slice::from_ref(&whole));
        let in_pieces = compute(&pieces);
        prop_assert_eq!(format!("{:?}", at_once.payouts), format!("{:?}", in_pieces.payouts));
        prop_assert_eq!(&at_once.fx_gaps, &in_pieces.fx_gaps);
        prop_assert_eq!(&at_once.eligibility, &in_pieces.eligibility);

        let expected = reference(&lines);
        let computed: BTreeMap<&str, (Decimal, Decimal)> = at_once
            .payouts
            .iter()
            .map(|p| {
                let exact = |amount: crate::domain::money::Payable| dec(&amount.to_string());
                (p.partner_id.as_str(), (exact(p.settlement.earned), exact(p.settlement.adjustments)))
            })
            .collect();
        prop_assert_eq!(computed, expected);
    }
}

#[test]
fn a_stored_line_without_a_readable_month_or_lateness_fails_instead_of_being_skipped() {
    let master = &MASTER.0;
    let period: Period = PERIOD.parse().expect("the test period");
    let late = Line {
        partner: 0,
        category: 0,
        currency: 0,
        month: 1,
        amount_micro: 1_000_000,
    };
    // A late line whose month cannot be read would be booked by the close and never paid.
    let mut frame = segment(std::slice::from_ref(&late));
    frame
        .replace(
            "billing_month",
            Column::new("billing_month".into(), ["2026-9x"]),
        )
        .unwrap();
    let mut computer = PeriodComputer::new(master, period, Detail::Statements).unwrap();
    let error = computer.add_segment(&frame, true).unwrap_err().to_string();
    assert!(
        error.contains("not YYYY-MM") && error.contains("corrupt"),
        "{error}"
    );
    // A null lateness flag is not "not late".
    let mut frame = segment(std::slice::from_ref(&late));
    frame
        .replace("late", Column::new("late".into(), [None::<bool>]))
        .unwrap();
    let mut computer = PeriodComputer::new(master, period, Detail::Statements).unwrap();
    let error = computer.add_segment(&frame, true).unwrap_err().to_string();
    assert!(error.contains("no lateness flag"), "{error}");
}

#[test]
fn statement_rows_are_split_by_billing_month_and_fx_rate_and_carry_the_fx_text() {
    let period: Period = PERIOD.parse().expect("the test period");
    // Partner 2000002 is paid in EUR: USD lines of azure are converted, EUR lines are not.
    let lines = [
        // This period's USD lines: one row, converted with 2026-10's USD->EUR rate.
        (1, 0, 0, 0, 3_000_000_000i64),
        (1, 0, 0, 0, 1_250_500_000),
        // A late USD line billed in 2026-09: its own row, with 2026-09's rate.
        (1, 0, 0, 1, 400_000_000),
        // EUR revenue in the payout currency: no FX rate.
        (1, 0, 1, 0, 10_000_000),
    ]
    .map(|(partner, category, currency, month, amount_micro)| Line {
        partner,
        category,
        currency,
        month,
        amount_micro,
    });
    let computed = compute(&[segment(&lines)]);
    let figures = computed
        .payouts
        .iter()
        .find(|p| p.partner_id == "2000002")
        .expect("the partner has a statement");
    let rows: Vec<_> = figures
        .categories
        .iter()
        .map(|c| {
            (
                c.booking,
                c.billing_month.to_string(),
                c.line_currency.as_str(),
                c.lines,
                c.fx.as_ref()
                    .map(|fx| (fx.rate.clone(), fx.period.to_string())),
            )
        })
        .collect();
    let fx_text = |month: &str| {
        let (.., rate) = MASTER
            .1
            .iter()
            .find(|(m, from, to, _)| (*m, *from, *to) == (month, "USD", "EUR"))
            .expect("a USD->EUR rate");
        rate.to_string()
    };
    use super::Booking::{Adjustment, Earned};
    assert_eq!(
        rows,
        vec![
            (Earned, PERIOD.to_owned(), "EUR", 1, None),
            (
                Earned,
                PERIOD.to_owned(),
                "USD",
                2,
                Some((fx_text(PERIOD), PERIOD.to_owned()))
            ),
            (
                Adjustment,
                "2026-09".to_owned(),
                "USD",
                1,
                Some((fx_text("2026-09"), "2026-09".to_owned()))
            ),
        ]
    );
    assert_ne!(fx_text(PERIOD), fx_text("2026-09"));
    assert!(figures.categories.iter().all(|c| c.billing_month <= period));
}

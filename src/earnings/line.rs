//! The line report of a period (`earnings_lines.parquet`): the columns taken from a stored
//! segment and the columns the computation adds, built line by line as `segment` computes.
//! Only lays out what it is given; it never computes or rounds an earning.
//!
//! Money is Parquet DECIMAL with a fixed scale per column, filled from the engine's own scaled
//! integers (no text on the per-line path): `amount` DECIMAL(19, 6) (every 64-bit amount in
//! 10^-6 units), `fx_rate` DECIMAL(38, 10), `earning` DECIMAL(38, 16), the exact line earning
//! (a converted line is already rounded to 6 places and fits that scale).

use polars::prelude::*;

use crate::domain::money::{AMOUNT_SCALE, EARNING_SCALE, RATE_SCALE};

/// Columns of `earnings_lines.parquet` taken from a stored segment, in the report's order.
/// `amount_micro` becomes the report's `amount` column (see `segment_columns`).
pub(super) const LINE_SEGMENT_COLUMNS: [&str; 9] = [
    "record_id",
    "partner_id",
    "customer_id",
    "product_category",
    "billing_month",
    "amount_micro",
    "currency",
    "source_file",
    "line",
];

/// Columns of `earnings_lines.parquet` the computation adds as text, before `fx_rate`.
const LINE_TEXT_COLUMNS: [&str; 4] = ["booking", "program_id", "rate", "payout_currency"];

/// Decimal digits of `amount`: an `i64` in 10^-6 units has at most 19.
pub const AMOUNT_PRECISION: usize = 19;
/// Decimal digits of `fx_rate` and `earning`: the most Parquet DECIMAL in 16 bytes (and
/// polars' i128 decimal) holds. `fits_decimal` checks a value before it goes in.
pub const WIDE_PRECISION: usize = 38;
/// 10^38: values at or beyond it in absolute value do not fit `WIDE_PRECISION` digits.
const WIDE_LIMIT: u128 = 10u128.pow(WIDE_PRECISION as u32);

/// Whether a scaled integer fits a DECIMAL column of `WIDE_PRECISION` digits.
pub(super) fn fits_decimal(value: i128) -> bool {
    value.unsigned_abs() < WIDE_LIMIT
}

/// Why a line of the report earns nothing: its `reason` column (null for a line that earns).
#[derive(Debug, Clone, Copy)]
pub(super) enum NoEarning<'a> {
    /// The partner's type has no program: the line is not incentivised.
    NoProgram,
    /// The partner is not eligible for the line's month: the eligibility reason codes,
    /// `;`-joined and sorted as in `eligibility.csv`.
    Ineligible(&'a str),
    /// The program has no rate for the line's category in the month's rate table.
    UnratedCategory,
    /// The FX rate the line needs was removed after ingest (the line is also an exception).
    FxRateMissing,
}

impl NoEarning<'_> {
    fn code(self) -> &'static str {
        match self {
            NoEarning::NoProgram => "NO_PROGRAM",
            NoEarning::Ineligible(_) => "INELIGIBLE",
            NoEarning::UnratedCategory => "UNRATED_CATEGORY",
            NoEarning::FxRateMissing => "FX_RATE_MISSING",
        }
    }
}

/// What the computation adds to one line of the report.
pub(super) struct ComputedLine<'a> {
    pub(super) text: [Option<&'a str>; 4],
    /// The FX rate used, in 10^-10 units; `None` when the line is not converted.
    pub(super) fx_rate: Option<i128>,
    /// The line earning at `EARNING_SCALE`; `None` when it earns nothing.
    pub(super) earning: Option<i128>,
    pub(super) eligible: bool,
    pub(super) no_earning: Option<NoEarning<'a>>,
}

/// Builders of the computed columns of one segment's line batch.
pub(super) struct ComputedColumns {
    text: [StringChunkedBuilder; 4],
    fx_rate: PrimitiveChunkedBuilder<Int128Type>,
    earning: PrimitiveChunkedBuilder<Int128Type>,
    eligible: Vec<bool>,
    reason: StringChunkedBuilder,
    /// `INELIGIBLE:<codes>`, kept from the last line that needed it (lines of a partner come
    /// together, so this is rarely rebuilt).
    ineligible: String,
}

impl ComputedColumns {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            text: LINE_TEXT_COLUMNS.map(|n| StringChunkedBuilder::new(n.into(), capacity)),
            fx_rate: PrimitiveChunkedBuilder::new("fx_rate".into(), capacity),
            earning: PrimitiveChunkedBuilder::new("earning".into(), capacity),
            eligible: Vec::with_capacity(capacity),
            reason: StringChunkedBuilder::new("reason".into(), capacity),
            ineligible: String::new(),
        }
    }

    /// Adds one line. The caller has checked `fx_rate` and `earning` with `fits_decimal`.
    pub(super) fn push(&mut self, line: ComputedLine<'_>) {
        for (builder, value) in self.text.iter_mut().zip(line.text) {
            builder.append_option(value);
        }
        self.fx_rate.append_option(line.fx_rate);
        self.earning.append_option(line.earning);
        self.eligible.push(line.eligible);
        match line.no_earning {
            None => self.reason.append_null(),
            Some(NoEarning::Ineligible(codes)) => {
                let prefix = NoEarning::Ineligible(codes).code();
                let same = self
                    .ineligible
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix(':'))
                    == Some(codes);
                if !same {
                    self.ineligible.clear();
                    self.ineligible.push_str(prefix);
                    self.ineligible.push(':');
                    self.ineligible.push_str(codes);
                }
                self.reason.append_value(&self.ineligible);
            }
            Some(other) => self.reason.append_value(other.code()),
        }
    }

    pub(super) fn finish(self) -> PolarsResult<Vec<Column>> {
        let mut columns: Vec<Column> = self
            .text
            .into_iter()
            .map(|b| b.finish().into_column())
            .collect();
        // `into_decimal` checks the precision again over the whole column (fail closed).
        columns.push(
            self.fx_rate
                .finish()
                .into_decimal(WIDE_PRECISION, RATE_SCALE as usize)?
                .into_column(),
        );
        columns.push(
            self.earning
                .finish()
                .into_decimal(WIDE_PRECISION, EARNING_SCALE as usize)?
                .into_column(),
        );
        columns.push(BooleanChunked::from_slice("eligible".into(), &self.eligible).into_column());
        columns.push(self.reason.finish().into_column());
        Ok(columns)
    }
}

/// The segment's columns of the report for the lines `mask` keeps, with `amount_micro` turned
/// into `amount`, DECIMAL(19, 6), by a cast (no text).
pub(super) fn segment_columns(frame: &DataFrame, mask: &BooleanChunked) -> PolarsResult<DataFrame> {
    let mut lines = frame.select(LINE_SEGMENT_COLUMNS)?.filter(mask)?;
    let index = lines.try_get_column_index("amount_micro")?;
    let amount = amount_column(lines.column("amount_micro")?.i64()?)?;
    lines.replace_column(index, amount)?;
    Ok(lines)
}

/// `amount`: amounts in 10^-6 units as DECIMAL(19, 6); every `i64` has at most 19 digits.
fn amount_column(micro: &Int64Chunked) -> PolarsResult<Column> {
    let wide = micro.cast(&DataType::Int128)?;
    Ok(wide
        .i128()?
        .clone()
        .into_decimal_unchecked(AMOUNT_PRECISION, AMOUNT_SCALE as usize)
        .into_column()
        .with_name("amount".into()))
}

/// An empty line report, with the report's columns.
pub fn empty_lines() -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = Vec::new();
    for name in LINE_SEGMENT_COLUMNS {
        columns.push(match name {
            "line" => Int64Chunked::from_vec(name.into(), Vec::new()).into_column(),
            "amount_micro" => amount_column(&Int64Chunked::from_vec(name.into(), Vec::new()))?,
            _ => StringChunked::full_null(name.into(), 0).into_column(),
        });
    }
    columns.extend(ComputedColumns::new(0).finish()?);
    DataFrame::new(0, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(earning: Option<i128>, no_earning: Option<NoEarning<'_>>) -> ComputedLine<'_> {
        ComputedLine {
            text: [Some("earned"), Some("p"), None, Some("USD")],
            fx_rate: earning.map(|_| 11_000_000_000),
            earning,
            eligible: no_earning.is_none(),
            no_earning,
        }
    }

    #[test]
    fn money_columns_are_decimal_and_every_line_without_earning_has_its_reason() {
        let mut columns = ComputedColumns::new(6);
        columns.push(line(Some(-12_345_678_901_234_567), None));
        columns.push(line(None, Some(NoEarning::NoProgram)));
        columns.push(line(
            None,
            Some(NoEarning::Ineligible("COMPETENCY_NOT_MET")),
        ));
        columns.push(line(
            None,
            Some(NoEarning::Ineligible("NO_ACTIVE_MPN_AGREEMENT")),
        ));
        columns.push(line(None, Some(NoEarning::UnratedCategory)));
        columns.push(line(None, Some(NoEarning::FxRateMissing)));
        let frame = DataFrame::new(6, columns.finish().unwrap()).unwrap();
        let earning = frame.column("earning").unwrap();
        assert_eq!(earning.dtype(), &DataType::Decimal(38, 16));
        assert_eq!(
            earning
                .cast(&DataType::String)
                .unwrap()
                .str()
                .unwrap()
                .get(0),
            Some("-1.2345678901234567")
        );
        let fx = frame.column("fx_rate").unwrap();
        assert_eq!(fx.dtype(), &DataType::Decimal(38, 10));
        assert_eq!(
            fx.cast(&DataType::String).unwrap().str().unwrap().get(0),
            Some("1.1000000000")
        );
        let reasons: Vec<Option<&str>> = frame
            .column("reason")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(
            reasons,
            [
                None,
                Some("NO_PROGRAM"),
                Some("INELIGIBLE:COMPETENCY_NOT_MET"),
                Some("INELIGIBLE:NO_ACTIVE_MPN_AGREEMENT"),
                Some("UNRATED_CATEGORY"),
                Some("FX_RATE_MISSING"),
            ]
        );
        let empty = empty_lines().unwrap();
        assert_eq!(
            empty.column("amount").unwrap().dtype(),
            &DataType::Decimal(19, 6)
        );
        assert_eq!(empty.width(), frame.width() + LINE_SEGMENT_COLUMNS.len());
    }

    #[test]
    fn a_value_past_38_digits_is_refused_not_truncated() {
        let limit = 10i128.pow(38);
        assert!(fits_decimal(limit - 1) && fits_decimal(-(limit - 1)));
        assert!(!fits_decimal(limit) && !fits_decimal(i128::MIN));
        let mut columns = ComputedColumns::new(1);
        columns.push(line(Some(limit), None));
        assert!(columns.finish().is_err());
    }
}

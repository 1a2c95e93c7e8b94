//! Pure computation of a period (SPEC §3): lines × rates × FX -> line earnings -> period totals
//! -> settlements. Works column by column over the stored revenue segments; rounding is done
//! only through `domain::money` at the places the SPEC names.

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;

use polars::prelude::*;

use crate::domain::Rate;
use crate::domain::money::{
    Currency, EARNING_SCALE, ExactSum, NoMinorUnits, Overflow, format_scaled, line_earning,
    write_scaled,
};
use crate::domain::partner::Partner;
use crate::domain::period::Period;
use crate::domain::reasons::{EligibilityReason, HoldReason};
use crate::eligibility;
use crate::ingest::lookup::IdIndex;
use crate::ingest::read::PARTNER_POSITION;
use crate::ingest::{MasterData, Program};
use crate::ledger::{self, Balances, Settlement};

/// How a line enters the period: its own month, or late revenue of a closed month (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Booking {
    Earned,
    Adjustment,
}

impl Booking {
    pub fn as_str(self) -> &'static str {
        match self {
            Booking::Earned => "earned",
            Booking::Adjustment => "adjustment",
        }
    }
}

/// A partner's balances as the store holds them after the last closed period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBalance {
    pub currency: Currency,
    pub balances: Balances,
}

/// Lines of a statement, summarised by (booking, category, line currency, rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryLine {
    pub booking: Booking,
    pub product_category: String,
    pub line_currency: String,
    /// The program rate, or `None` for a category without one (non-incentivised revenue).
    pub rate: Option<String>,
    pub lines: u64,
    /// Revenue in the line currency, exact.
    pub revenue: String,
    /// Earning in the payout currency, exact (the period sum rounds once, not per category).
    pub earning: String,
}

/// One `payouts.csv` row and its statement figures.
#[derive(Debug, Clone)]
pub struct PartnerFigures {
    pub partner_id: String,
    pub partner_name: String,
    pub program_id: String,
    pub currency: Currency,
    /// The currency's minor units, as the figures were rounded to.
    pub minor_units: u32,
    pub settlement: Settlement,
    pub hold_reasons: Vec<HoldReason>,
    pub categories: Vec<CategoryLine>,
}

impl PartnerFigures {
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilityRow {
    pub partner_id: String,
    pub program_id: String,
    pub reasons: Vec<EligibilityReason>,
    pub revenue_lines: u64,
}

/// An ingested line that cannot be converted with today's FX file (the snapshot changed
/// since it was ingested). It earns nothing until the rate arrives, and blocks `close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxGap {
    pub source_file: String,
    pub line: u64,
    pub record_id: String,
    pub detail: String,
}

/// Ingested lines of a partner that is no longer in partners.csv, which the period would book.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MissingLines {
    /// Lines of the period's own month.
    pub own: u64,
    /// Late lines of a closed month, not yet booked.
    pub late: u64,
}

/// A partner no longer in partners.csv with money in the store: a non-zero balance left by
/// the last close, or lines the period would book. Nothing of it is settled; it stays in the
/// store until the partner is back (`PARTNER_MISSING`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPartner {
    pub partner_id: String,
    /// The stored balance, when it is not zero.
    pub balance: Option<StoredBalance>,
    pub lines: MissingLines,
}

#[derive(Debug)]
pub struct PeriodComputation {
    pub period: Period,
    pub payouts: Vec<PartnerFigures>,
    pub eligibility: Vec<EligibilityRow>,
    pub fx_gaps: Vec<FxGap>,
    /// Sorted by partner id.
    pub missing_partners: Vec<MissingPartner>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error(
        "program `{program}` has no min_payout for {currency} (partner {partner_id}'s payout currency)"
    )]
    MissingMinPayout {
        program: String,
        currency: Currency,
        partner_id: String,
    },
    #[error(
        "partner {partner_id}: balance is held in {stored} but the payout currency is now {current}"
    )]
    CurrencyChanged {
        partner_id: String,
        stored: Currency,
        current: Currency,
    },
    #[error("partner {partner_id}: {source}")]
    Overflow {
        partner_id: String,
        source: Overflow,
    },
    #[error("partner {partner_id}: payout currency {source}")]
    NoMinorUnits {
        partner_id: String,
        source: NoMinorUnits,
    },
    #[error("revenue segment: a stored line has no amount (row {row}): the store is corrupt")]
    MissingAmount { row: usize },
    #[error("revenue segment: {0}")]
    Segment(#[from] PolarsError),
}

/// Configuration errors reported before anything is computed (SPEC §3).
pub fn check_configuration(master: &MasterData) -> Result<(), ComputeError> {
    for partner in master.partners.values() {
        if let Some(program) = master.programs.for_type(partner.partner_type)
            && !program.min_payout.contains_key(&partner.payout_currency)
        {
            return Err(ComputeError::MissingMinPayout {
                program: program.id.clone(),
                currency: partner.payout_currency,
                partner_id: partner.partner_id.clone(),
            });
        }
    }
    Ok(())
}

/// How much a computation keeps besides the payout totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// `run`: the payouts and the line report.
    Payouts,
    /// `close`: also the statement lines, per category.
    Statements,
}

/// A statement line's key: partner, booking, category id, line-currency id, rate identity.
/// Ids index `Interner` strings; the rate is identified by its address in the programs.
type CategoryKey = (u32, Booking, u32, u32, Option<usize>);

/// A statement line's running totals: lines, revenue in 10^-6 units, exact earning.
#[derive(Default)]
struct CategoryTotals {
    lines: u64,
    revenue_micro: i128,
    earning: ExactSum,
}

impl CategoryTotals {
    fn merge(&mut self, other: &CategoryTotals) {
        self.lines += other.lines;
        self.revenue_micro += other.revenue_micro;
        self.earning.merge(other.earning);
    }
}

#[derive(Default, Clone)]
struct PartnerAccumulator {
    earned: ExactSum,
    adjustments: ExactSum,
    own_lines: u64,
    late_lines: u64,
}

impl PartnerAccumulator {
    fn merge(&mut self, other: &PartnerAccumulator) {
        self.earned.merge(other.earned);
        self.adjustments.merge(other.adjustments);
        self.own_lines += other.own_lines;
        self.late_lines += other.late_lines;
    }
}

/// Small strings seen many times (categories, currencies), stored once.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<String, u32>,
    texts: Vec<String>,
}

impl Interner {
    fn id(&mut self, text: &str) -> u32 {
        if let Some(id) = self.ids.get(text) {
            return *id;
        }
        let id = self.texts.len() as u32;
        self.texts.push(text.to_owned());
        self.ids.insert(text.to_owned(), id);
        id
    }

    fn text(&self, id: u32) -> &str {
        &self.texts[id as usize]
    }
}

/// A handful of strings looked up by a linear scan: faster than hashing for a few values.
#[derive(Default)]
struct FewTexts {
    texts: Vec<String>,
}

impl FewTexts {
    fn id(&mut self, text: &str) -> u32 {
        match self.texts.iter().position(|t| t == text) {
            Some(id) => id as u32,
            None => {
                self.texts.push(text.to_owned());
                (self.texts.len() - 1) as u32
            }
        }
    }
}

/// Columns of `earnings_lines.parquet` taken as they are from a stored segment.
const LINE_SEGMENT_COLUMNS: [&str; 9] = [
    "record_id",
    "partner_id",
    "customer_id",
    "product_category",
    "billing_month",
    "amount",
    "currency",
    "source_file",
    "line",
];

/// Columns of `earnings_lines.parquet` the computation adds, as text.
const LINE_COMPUTED_COLUMNS: [&str; 6] = [
    "booking",
    "program_id",
    "rate",
    "payout_currency",
    "fx_rate",
    "earning",
];

/// Builders of the computed columns of one segment's line batch.
struct ComputedColumns {
    text: [StringChunkedBuilder; 6],
    eligible: Vec<bool>,
    earning: String,
}

impl ComputedColumns {
    fn new(capacity: usize) -> Self {
        Self {
            text: LINE_COMPUTED_COLUMNS.map(|n| StringChunkedBuilder::new(n.into(), capacity)),
            eligible: Vec::with_capacity(capacity),
            earning: String::with_capacity(48),
        }
    }

    fn push(&mut self, values: [Option<&str>; 5], earning: Option<i128>, eligible: bool) {
        for (builder, value) in self.text.iter_mut().zip(values) {
            builder.append_option(value);
        }
        match earning {
            Some(value) => {
                self.earning.clear();
                write_scaled(&mut self.earning, value, EARNING_SCALE, 6);
                self.text[5].append_value(&self.earning);
            }
            None => self.text[5].append_null(),
        }
        self.eligible.push(eligible);
    }

    fn finish(self) -> Vec<Column> {
        let mut columns: Vec<Column> = self
            .text
            .into_iter()
            .map(|b| b.finish().into_column())
            .collect();
        columns.push(BooleanChunked::from_slice("eligible".into(), &self.eligible).into_column());
        columns
    }
}

/// What the computer looks up once per partner.
struct PartnerInfo<'m> {
    partner: &'m Partner,
    program: Option<&'m Program>,
    payout: Currency,
    /// Eligible at the period's as-of date.
    eligible: bool,
}

/// The computation of one period, fed one segment at a time so that memory stays bounded by a
/// segment, not the month. Segments may be computed on many cores (`compute_segment`) and are
/// merged in order (`merge`). Pure: the same segments in the same order give the same figures.
pub struct PeriodComputer<'m> {
    master: &'m MasterData,
    period: Period,
    period_text: String,
    detail: Detail,
    /// Whether `compute_segment` returns the lines for `earnings_lines.parquet`.
    line_report: bool,
    partners: Vec<PartnerInfo<'m>>,
    partner_index: IdIndex,
    accumulators: Vec<PartnerAccumulator>,
    /// Per-segment sum tables ready for reuse, one per core at most.
    sums_pool: std::sync::Mutex<Vec<Vec<PartnerAccumulator>>>,
    categories: FxHashMap<CategoryKey, CategoryTotals>,
    rates: FxHashMap<usize, &'m Rate>,
    interner: Interner,
    fx_gaps: Vec<FxGap>,
    missing_lines: BTreeMap<String, MissingLines>,
}

/// One segment's share of the period.
pub struct SegmentPart<'m> {
    accumulators: Vec<(u32, PartnerAccumulator)>,
    /// Keyed as `CategoryKey`, with ids into `texts`.
    categories: FxHashMap<CategoryKey, CategoryTotals>,
    texts: FewTexts,
    rates: Vec<(usize, &'m Rate)>,
    fx_gaps: Vec<FxGap>,
    missing_lines: FxHashMap<String, MissingLines>,
    lines: DataFrame,
}

impl<'m> PeriodComputer<'m> {
    pub fn new(
        master: &'m MasterData,
        period: Period,
        detail: Detail,
    ) -> Result<Self, ComputeError> {
        check_configuration(master)?;
        let as_of = period.as_of_date();
        let partners: Vec<PartnerInfo> = master
            .partners
            .values()
            .map(|partner| {
                let program = master.programs.for_type(partner.partner_type);
                let eligible = eligibility::verdict(master, partner, as_of)
                    .is_some_and(|(_, reasons)| reasons.is_empty());
                PartnerInfo {
                    partner,
                    program,
                    payout: partner.payout_currency,
                    eligible,
                }
            })
            .collect();
        let partner_index = IdIndex::new(partners.iter().map(|p| p.partner.partner_id.as_str()));
        let accumulators = vec![PartnerAccumulator::default(); partners.len()];
        Ok(Self {
            master,
            period,
            period_text: period.to_string(),
            detail,
            line_report: true,
            partners,
            partner_index,
            accumulators,
            sums_pool: std::sync::Mutex::default(),
            categories: FxHashMap::default(),
            rates: FxHashMap::default(),
            interner: Interner::default(),
            fx_gaps: Vec::new(),
            missing_lines: BTreeMap::new(),
        })
    }

    /// Computes payouts only: `compute_segment` returns no lines.
    pub fn without_line_report(mut self) -> Self {
        self.line_report = false;
        self
    }

    /// A zeroed per-partner table for one segment's sums: from the pool, or new.
    fn take_sums(&self) -> Vec<PartnerAccumulator> {
        let pooled = self
            .sums_pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        pooled.unwrap_or_else(|| vec![PartnerAccumulator::default(); self.partners.len()])
    }

    /// Gives back a table whose touched entries were taken (so it is all zero again): the next
    /// segment reuses it instead of allocating and zeroing megabytes anew.
    fn return_sums(&self, sums: Vec<PartnerAccumulator>) {
        self.sums_pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sums);
    }

    /// Adds one stored segment and returns its line batch (see `compute_segment`).
    pub fn add_segment(
        &mut self,
        frame: &DataFrame,
        late_unbooked: bool,
    ) -> Result<DataFrame, ComputeError> {
        let part = self.compute_segment(frame, late_unbooked)?;
        Ok(self.merge(part))
    }

    /// Computes the lines of one stored segment that belong to the period (its own month, or
    /// late lines not yet booked), with rate, FX and earning for the line report.
    pub fn compute_segment(
        &self,
        frame: &DataFrame,
        late_unbooked: bool,
    ) -> Result<SegmentPart<'m>, ComputeError> {
        let text = |name: &str| -> PolarsResult<&StringChunked> { frame.column(name)?.str() };
        let amount_micro = frame.column("amount_micro")?.i64()?;
        // Positions found by the row checks of this same snapshot, when the frame is fresh.
        let mut positions = match frame.column(PARTNER_POSITION) {
            Ok(column) => Some(column.u32()?.iter()),
            Err(_) => None,
        };
        let late = frame.column("late")?.bool()?;
        // One pass over the columns, without copying them out first.
        let rows = amount_micro
            .iter()
            .zip(late.iter())
            .zip(text("partner_id")?.iter())
            .zip(text("product_category")?.iter())
            .zip(text("billing_month")?.iter())
            .zip(text("currency")?.iter());
        let master = self.master;
        let height = frame.height();
        let mut mask = Vec::with_capacity(height);
        let mut computed = ComputedColumns::new(height);
        let mut sums = self.take_sums();
        let mut touched = Vec::new();
        let mut part = SegmentPart {
            accumulators: Vec::new(),
            categories: FxHashMap::default(),
            texts: FewTexts::default(),
            rates: Vec::new(),
            fx_gaps: Vec::new(),
            missing_lines: FxHashMap::default(),
            lines: DataFrame::empty(),
        };
        let mut other_months: FxHashMap<(u32, Period), bool> = FxHashMap::default();
        for (row, (((((micro, is_late), pid), category), month_text), currency)) in rows.enumerate()
        {
            let position = positions.as_mut().map(|p| p.next().flatten());
            // Ingest never stores a line without its amount: a null is corruption, not zero.
            let micro = micro.ok_or(ComputeError::MissingAmount { row })?;
            let is_late = is_late.unwrap_or(false);
            let month_text = month_text.unwrap_or("");
            let booking = if is_late && late_unbooked {
                Booking::Adjustment
            } else if !is_late && same_text(month_text, &self.period_text) {
                Booking::Earned
            } else {
                mask.push(false);
                continue;
            };
            let month = match booking {
                Booking::Earned => self.period,
                Booking::Adjustment => match month_text.parse::<Period>() {
                    Ok(month) => month,
                    Err(_) => {
                        mask.push(false);
                        continue;
                    }
                },
            };
            let pid = pid.unwrap_or("");
            let found = match position {
                Some(position) => position.filter(|&p| p != u32::MAX),
                None => self.partner_index.get(pid),
            };
            let Some(index) = found else {
                // Not settled, and not lost: the period lists the partner (PARTNER_MISSING)
                // and a close refuses to book these lines.
                let missing = match part.missing_lines.get_mut(pid) {
                    Some(missing) => missing,
                    None => part.missing_lines.entry(pid.to_owned()).or_default(),
                };
                match booking {
                    Booking::Earned => missing.own += 1,
                    Booking::Adjustment => missing.late += 1,
                }
                mask.push(false);
                continue;
            };
            mask.push(true);
            let info = &self.partners[index as usize];
            let program = info.program;
            let eligible = program.is_some()
                && if month == self.period {
                    info.eligible
                } else {
                    *other_months.entry((index, month)).or_insert_with(|| {
                        eligibility::verdict(master, info.partner, month.as_of_date())
                            .is_some_and(|(_, reasons)| reasons.is_empty())
                    })
                };
            let category_text = category.unwrap_or("");
            let line_currency_text = currency.unwrap_or("");
            let rate = program
                .filter(|_| eligible)
                .and_then(|p| p.rate(category_text, month));
            let payout = info.payout;
            let mut fx_text = None;
            let mut earning = None;
            if let Some(rate) = rate {
                let fx = if same_text(line_currency_text, payout.code()) {
                    Some(None)
                } else {
                    Currency::parse(line_currency_text)
                        .and_then(|c| master.fx.get(month, c, payout))
                        .map(|fx| {
                            fx_text = Some(fx.text.as_str());
                            Some(fx.scaled)
                        })
                };
                match fx {
                    Some(fx) => {
                        let value = line_earning(micro, rate.scaled, fx).map_err(|source| {
                            ComputeError::Overflow {
                                partner_id: pid.to_owned(),
                                source,
                            }
                        })?;
                        earning = Some(value);
                    }
                    None => part.fx_gaps.push(FxGap {
                        source_file: text_at(frame, "source_file", row)?,
                        line: frame.column("line")?.i64()?.get(row).unwrap_or(0) as u64,
                        record_id: text_at(frame, "record_id", row)?,
                        detail: format!(
                            "no FX rate for {month} {line_currency_text}->{payout} (rate removed after ingest)"
                        ),
                    }),
                }
            }
            let sum = &mut sums[index as usize];
            if sum.own_lines + sum.late_lines == 0 {
                touched.push(index);
            }
            match booking {
                Booking::Earned => sum.own_lines += 1,
                Booking::Adjustment => sum.late_lines += 1,
            }
            if let Some(value) = earning {
                match booking {
                    Booking::Earned => sum.earned.add(value),
                    Booking::Adjustment => sum.adjustments.add(value),
                }
            }
            if self.detail == Detail::Statements && program.is_some() {
                let rate_key = rate.map(|r| {
                    let address = r as *const Rate as usize;
                    part.rates.push((address, r));
                    address
                });
                let key = (
                    index,
                    booking,
                    part.texts.id(category_text),
                    part.texts.id(line_currency_text),
                    rate_key,
                );
                let totals = part.categories.entry(key).or_default();
                totals.lines += 1;
                totals.revenue_micro += i128::from(micro);
                if let Some(value) = earning {
                    totals.earning.add(value);
                }
            }
            if !self.line_report {
                continue;
            }
            computed.push(
                [
                    Some(booking.as_str()),
                    program.map(|p| p.id.as_str()),
                    rate.map(|r| r.text.as_str()),
                    Some(payout.code()),
                    fx_text,
                ],
                earning,
                eligible,
            );
        }
        part.rates.sort_unstable_by_key(|(address, _)| *address);
        part.rates.dedup_by_key(|(address, _)| *address);
        part.accumulators = touched
            .into_iter()
            .map(|index| (index, std::mem::take(&mut sums[index as usize])))
            .collect();
        self.return_sums(sums);
        if self.line_report {
            let mask = BooleanChunked::from_slice("mask".into(), &mask);
            let mut lines = frame.select(LINE_SEGMENT_COLUMNS)?.filter(&mask)?;
            for column in computed.finish() {
                lines.with_column(column)?;
            }
            part.lines = lines;
        }
        Ok(part)
    }

    /// Adds a computed segment to the period and returns its line batch.
    pub fn merge(&mut self, part: SegmentPart<'m>) -> DataFrame {
        for (index, sum) in &part.accumulators {
            self.accumulators[*index as usize].merge(sum);
        }
        let global: Vec<u32> = part
            .texts
            .texts
            .iter()
            .map(|t| self.interner.id(t))
            .collect();
        for ((index, booking, category, currency, rate), totals) in &part.categories {
            let key = (
                *index,
                *booking,
                global[*category as usize],
                global[*currency as usize],
                *rate,
            );
            self.categories.entry(key).or_default().merge(totals);
        }
        self.rates.extend(part.rates);
        self.fx_gaps.extend(part.fx_gaps);
        for (partner_id, lines) in part.missing_lines {
            let total = self.missing_lines.entry(partner_id).or_default();
            total.own += lines.own;
            total.late += lines.late;
        }
        part.lines
    }

    /// Settles every partner against the balances of the last closed period.
    pub fn finish(
        self,
        balances: &HashMap<String, StoredBalance>,
    ) -> Result<PeriodComputation, ComputeError> {
        let mut categories_by_partner: HashMap<u32, Vec<CategoryLine>> = HashMap::new();
        for ((index, booking, category, currency, rate), totals) in &self.categories {
            let rate_text = rate
                .and_then(|r| self.rates.get(&r))
                .map(|r| r.text.clone());
            categories_by_partner
                .entry(*index)
                .or_default()
                .push(CategoryLine {
                    booking: *booking,
                    product_category: self.interner.text(*category).to_owned(),
                    line_currency: self.interner.text(*currency).to_owned(),
                    revenue: format_scaled(
                        totals.revenue_micro,
                        crate::domain::money::AMOUNT_SCALE,
                        2,
                    ),
                    earning: earning_text(totals.earning, rate_text.is_some()),
                    rate: rate_text,
                    lines: totals.lines,
                });
        }
        let as_of = self.period.as_of_date();
        let mut payouts = Vec::new();
        let mut eligibility_rows = Vec::new();
        for (index, info) in self.partners.iter().enumerate() {
            let partner = info.partner;
            let Some((program, reasons)) = eligibility::verdict(self.master, partner, as_of) else {
                continue;
            };
            let accumulator = &self.accumulators[index];
            eligibility_rows.push(EligibilityRow {
                partner_id: partner.partner_id.clone(),
                program_id: program.id.clone(),
                reasons,
                revenue_lines: accumulator.own_lines,
            });
            let currency = partner.payout_currency;
            let before = match balances.get(&partner.partner_id) {
                Some(stored) if stored.currency != currency && !stored.balances.is_zero() => {
                    return Err(ComputeError::CurrencyChanged {
                        partner_id: partner.partner_id.clone(),
                        stored: stored.currency,
                        current: currency,
                    });
                }
                Some(stored) => stored.balances,
                None => Balances::default(),
            };
            let minor = currency
                .minor_units()
                .map_err(|source| ComputeError::NoMinorUnits {
                    partner_id: partner.partner_id.clone(),
                    source,
                })?;
            let overflow = |source| ComputeError::Overflow {
                partner_id: partner.partner_id.clone(),
                source,
            };
            let earned = accumulator.earned.round_to_minor(minor).map_err(overflow)?;
            let adjustments = accumulator
                .adjustments
                .round_to_minor(minor)
                .map_err(overflow)?;
            let hold_reasons =
                eligibility::hold_reasons(partner, self.master.profile(&partner.partner_id), as_of);
            // check_configuration refuses this before anything is computed; never a zero threshold.
            let min_payout = program.min_payout.get(&currency).copied().ok_or_else(|| {
                ComputeError::MissingMinPayout {
                    program: program.id.clone(),
                    currency,
                    partner_id: partner.partner_id.clone(),
                }
            })?;
            let settlement = ledger::settle(
                before,
                earned,
                adjustments,
                !hold_reasons.is_empty(),
                min_payout,
            );
            let has_lines = accumulator.own_lines + accumulator.late_lines > 0;
            if !(has_lines || !before.is_zero() || !settlement.after.is_zero()) {
                continue;
            }
            let mut categories = categories_by_partner
                .remove(&(index as u32))
                .unwrap_or_default();
            categories.sort_by(|a, b| {
                (a.booking, &a.product_category, &a.line_currency, &a.rate).cmp(&(
                    b.booking,
                    &b.product_category,
                    &b.line_currency,
                    &b.rate,
                ))
            });
            payouts.push(PartnerFigures {
                partner_id: partner.partner_id.clone(),
                partner_name: partner.name.clone(),
                program_id: program.id.clone(),
                currency,
                minor_units: minor,
                settlement,
                hold_reasons,
                categories,
            });
        }
        let mut missing: BTreeMap<String, MissingPartner> = self
            .missing_lines
            .into_iter()
            .map(|(partner_id, lines)| {
                let partner = MissingPartner {
                    partner_id: partner_id.clone(),
                    balance: None,
                    lines,
                };
                (partner_id, partner)
            })
            .collect();
        for (partner_id, stored) in balances {
            if !stored.balances.is_zero() && !self.master.partners.contains_key(partner_id) {
                missing
                    .entry(partner_id.clone())
                    .or_insert_with(|| MissingPartner {
                        partner_id: partner_id.clone(),
                        balance: None,
                        lines: MissingLines::default(),
                    })
                    .balance = Some(*stored);
            }
        }
        Ok(PeriodComputation {
            period: self.period,
            payouts,
            eligibility: eligibility_rows,
            fx_gaps: self.fx_gaps,
            missing_partners: missing.into_values().collect(),
        })
    }
}

/// An empty line report, with the report's columns.
pub fn empty_lines() -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = LINE_SEGMENT_COLUMNS
        .iter()
        .map(|name| match *name {
            "line" => Int64Chunked::from_vec((*name).into(), Vec::new()).into_column(),
            _ => StringChunked::full_null((*name).into(), 0).into_column(),
        })
        .collect();
    columns.extend(ComputedColumns::new(0).finish());
    DataFrame::new(0, columns)
}

/// Equality of short texts without a call to `memcmp` (months, currency codes: the per-line
/// comparisons).
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 8 {
        let word = |bytes: &[u8]| {
            let mut buffer = [0u8; 8];
            buffer[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(buffer)
        };
        return word(a) == word(b);
    }
    a == b
}

/// The text of one cell of a stored segment (for the rare line reported on its own).
fn text_at(frame: &DataFrame, column: &str, row: usize) -> PolarsResult<String> {
    Ok(frame
        .column(column)?
        .str()?
        .get(row)
        .unwrap_or("")
        .to_owned())
}

fn earning_text(sum: ExactSum, rated: bool) -> String {
    if !rated {
        return "0".to_owned();
    }
    // Exact to 16 places; shown to the 6 places of converted lines unless more are needed.
    sum.exact_text()
}

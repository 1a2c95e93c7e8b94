//! The per-line loop (SPEC §3): one stored segment's lines × rates × FX -> line earnings,
//! summed exactly per partner and per statement line, and segments merged in order. The hot
//! path of a period (ten million lines in seconds): it works on the columns in place and never
//! rounds a sum; rounding to minor units is `settle`'s, through `domain::money`.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use polars::prelude::*;

use super::PARTNER_POSITION;
use super::line::{ComputedColumns, ComputedLine, NoEarning, fits_decimal, segment_columns};
use super::{Booking, ComputeError, Detail, FxGap, MissingLines, check_configuration};
use crate::domain::Rate;
use crate::domain::lookup::IdIndex;
use crate::domain::master::MasterData;
use crate::domain::money::{Currency, ExactSum, Overflow, line_earning};
use crate::domain::partner::Partner;
use crate::domain::period::Period;
use crate::domain::program::Program;
use crate::domain::reasons::join_codes;
use crate::eligibility;

/// A statement line's key: partner, booking, billing month, category id, line-currency id,
/// rate identity, FX rate identity. Ids index `Interner` strings; the rate and the FX rate are
/// identified by their addresses in the master data (both are `Rate`s, kept in `rates`).
pub(super) type CategoryKey = (u32, Booking, Period, u32, u32, Option<usize>, Option<usize>);

/// A statement line's running totals: lines, revenue in 10^-6 units, exact earning.
#[derive(Default)]
pub(super) struct CategoryTotals {
    pub(super) lines: u64,
    pub(super) revenue_micro: i128,
    pub(super) earning: ExactSum,
}

impl CategoryTotals {
    fn merge(&mut self, other: &CategoryTotals) {
        self.lines += other.lines;
        self.revenue_micro += other.revenue_micro;
        self.earning.merge(other.earning);
    }
}

#[derive(Default, Clone)]
pub(super) struct PartnerAccumulator {
    pub(super) earned: ExactSum,
    pub(super) adjustments: ExactSum,
    pub(super) own_lines: u64,
    pub(super) late_lines: u64,
    /// What the lines of an ineligible partner would earn were it eligible (the
    /// `payable_if_resolved` column): own month, and late lines.
    pub(super) unlocked_earned: ExactSum,
    pub(super) unlocked_adjustments: ExactSum,
}

impl PartnerAccumulator {
    fn merge(&mut self, other: &PartnerAccumulator) {
        self.earned.merge(other.earned);
        self.adjustments.merge(other.adjustments);
        self.unlocked_earned.merge(other.unlocked_earned);
        self.unlocked_adjustments.merge(other.unlocked_adjustments);
        self.own_lines += other.own_lines;
        self.late_lines += other.late_lines;
    }
}

/// Small strings seen many times (categories, currencies), stored once.
#[derive(Default)]
pub(super) struct Interner {
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

    pub(super) fn text(&self, id: u32) -> &str {
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

/// What the computer looks up once per partner.
pub(super) struct PartnerInfo<'m> {
    pub(super) partner: &'m Partner,
    program: Option<&'m Program>,
    payout: Currency,
    /// Why it is not eligible at the period's as-of date (the eligibility codes, `;`-joined
    /// and sorted); `None` when it is, or when its type has no program.
    ineligible: Option<String>,
}

/// The computation of one period, fed one segment at a time so that memory stays bounded by a
/// segment, not the month. Segments may be computed on many cores (`compute_segment`) and are
/// merged in order (`merge`). Pure: the same segments in the same order give the same figures.
pub struct PeriodComputer<'m> {
    pub(super) master: &'m MasterData,
    pub(super) period: Period,
    period_text: String,
    detail: Detail,
    /// Whether `compute_segment` returns the lines for `earnings_lines.parquet`.
    line_report: bool,
    pub(super) partners: Vec<PartnerInfo<'m>>,
    partner_index: IdIndex,
    pub(super) accumulators: Vec<PartnerAccumulator>,
    /// Per-segment sum tables ready for reuse, one per core at most.
    sums_pool: std::sync::Mutex<Vec<Vec<PartnerAccumulator>>>,
    pub(super) categories: FxHashMap<CategoryKey, CategoryTotals>,
    pub(super) rates: FxHashMap<usize, &'m Rate>,
    pub(super) interner: Interner,
    pub(super) fx_gaps: Vec<FxGap>,
    pub(super) missing_lines: BTreeMap<String, MissingLines>,
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
                let ineligible = ineligibility_codes(master, partner, as_of);
                PartnerInfo {
                    partner,
                    program,
                    payout: partner.payout_currency,
                    ineligible,
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
        // Eligibility of late lines' months: `None` when eligible, else the reason codes.
        let mut other_months: FxHashMap<(u32, Period), Option<std::rc::Rc<str>>> =
            FxHashMap::default();
        for (row, (((((micro, is_late), pid), category), month_text), currency)) in rows.enumerate()
        {
            let position = positions.as_mut().map(|p| p.next().flatten());
            // Ingest never stores a line without its amount: a null is corruption, not zero.
            let micro = micro.ok_or(ComputeError::MissingAmount { row })?;
            let corrupt = |what| ComputeError::CorruptLine { row, what };
            let is_late = is_late.ok_or_else(|| corrupt("no lateness flag"))?;
            let month_text = month_text.ok_or_else(|| corrupt("no billing month"))?;
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
                Booking::Adjustment => month_text
                    .parse::<Period>()
                    .map_err(|_| corrupt("a billing month that is not YYYY-MM"))?,
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
            let late_reasons = match program {
                Some(_) if month != self.period => other_months
                    .entry((index, month))
                    .or_insert_with(|| {
                        ineligibility_codes(master, info.partner, month.as_of_date())
                            .map(std::rc::Rc::from)
                    })
                    .clone(),
                Some(_) | None => None,
            };
            let ineligible = if month == self.period {
                info.ineligible.as_deref()
            } else {
                late_reasons.as_deref()
            };
            let eligible = program.is_some() && ineligible.is_none();
            let category_text = category.unwrap_or("");
            let line_currency_text = currency.unwrap_or("");
            let rate = program
                .filter(|_| eligible)
                .and_then(|p| p.rate(category_text, month));
            let payout = info.payout;
            let mut fx_rate = None;
            let mut fx_applied: Option<&'m Rate> = None;
            let mut earning = None;
            if let Some(rate) = rate {
                let fx = if same_text(line_currency_text, payout.code()) {
                    Some(None)
                } else {
                    Currency::parse(line_currency_text)
                        .and_then(|c| master.fx.get(month, c, payout))
                        .map(|fx| {
                            fx_rate = Some(fx.scaled);
                            fx_applied = Some(fx);
                            Some(fx.scaled)
                        })
                };
                match fx {
                    Some(fx) => {
                        // Beyond 38 digits, neither the line report's DECIMAL nor a reader
                        // could hold it: refused like an overflow, never truncated.
                        let value = line_earning(micro, rate.scaled, fx)
                            .and_then(|v| if fits_decimal(v) { Ok(v) } else { Err(Overflow) })
                            .and_then(|v| match fx {
                                Some(fx) if !fits_decimal(fx) => Err(Overflow),
                                Some(_) | None => Ok(v),
                            })
                            .map_err(|source| ComputeError::Overflow {
                                partner_id: pid.to_owned(),
                                source,
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
            // Were the partner eligible (issue 15's `payable_if_resolved`): a line of an
            // ineligible partner earns nothing, so this is the only work added for it. A line
            // whose FX rate is missing is left out of the figure, as it would be rejected.
            let unlocked = match program.filter(|_| !eligible) {
                Some(p) => match p.rate(category_text, month) {
                    Some(rate) if same_text(line_currency_text, payout.code()) => {
                        Some((rate, None))
                    }
                    Some(rate) => Currency::parse(line_currency_text)
                        .and_then(|c| master.fx.get(month, c, payout))
                        .map(|fx| (rate, Some(fx.scaled))),
                    None => None,
                },
                None => None,
            }
            .map(|(rate, fx)| {
                line_earning(micro, rate.scaled, fx).map_err(|source| ComputeError::Overflow {
                    partner_id: pid.to_owned(),
                    source,
                })
            })
            .transpose()?;
            let sum = &mut sums[index as usize];
            if sum.own_lines + sum.late_lines == 0 {
                touched.push(index);
            }
            if let Some(value) = unlocked {
                match booking {
                    Booking::Earned => sum.unlocked_earned.add(value),
                    Booking::Adjustment => sum.unlocked_adjustments.add(value),
                }
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
                let mut rate_key = |r: &'m Rate| {
                    let address = r as *const Rate as usize;
                    part.rates.push((address, r));
                    address
                };
                let rate_address = rate.map(&mut rate_key);
                // Only a line that earned was converted: its FX rate is part of its row.
                let fx_address = fx_applied.filter(|_| earning.is_some()).map(&mut rate_key);
                let key = (
                    index,
                    booking,
                    month,
                    part.texts.id(category_text),
                    part.texts.id(line_currency_text),
                    rate_address,
                    fx_address,
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
            let no_earning = match (program, ineligible, rate, earning) {
                (None, _, _, _) => Some(NoEarning::NoProgram),
                (Some(_), Some(codes), _, _) => Some(NoEarning::Ineligible(codes)),
                (Some(_), None, None, _) => Some(NoEarning::UnratedCategory),
                (Some(_), None, Some(_), None) => Some(NoEarning::FxRateMissing),
                (Some(_), None, Some(_), Some(_)) => None,
            };
            computed.push(ComputedLine {
                text: [
                    Some(booking.as_str()),
                    program.map(|p| p.id.as_str()),
                    rate.map(|r| r.text.as_str()),
                    Some(payout.code()),
                ],
                fx_rate,
                earning,
                eligible,
                no_earning,
            });
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
            let mut lines = segment_columns(frame, &mask)?;
            for column in computed.finish()? {
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
        for ((index, booking, month, category, currency, rate, fx), totals) in &part.categories {
            let key = (
                *index,
                *booking,
                *month,
                global[*category as usize],
                global[*currency as usize],
                *rate,
                *fx,
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
}

/// Why `partner` is not eligible on `as_of` (the eligibility codes, `;`-joined and sorted as in
/// `eligibility.csv`), or `None` when it is, or when its type has no program.
fn ineligibility_codes(
    master: &MasterData,
    partner: &Partner,
    as_of: chrono::NaiveDate,
) -> Option<String> {
    let (_, reasons) = eligibility::verdict(master, partner, as_of)?;
    (!reasons.is_empty()).then(|| join_codes(reasons.iter().map(|r| r.code())))
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

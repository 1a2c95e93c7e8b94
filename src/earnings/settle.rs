//! Settlement of a computed period (SPEC §3): each partner's exact sums rounded half-even to
//! the payout currency's minor units (through `domain::money`, the only place that rounds),
//! settled by `ledger` against the balances of the last closed period, with the statement
//! lines and the partners missing from partners.csv. Pure, like the rest of `earnings`.

use std::collections::{BTreeMap, HashMap};

use super::segment::PeriodComputer;
use super::{
    AppliedFx, CategoryLine, ComputeError, EligibilityRow, MissingLines, MissingPartner,
    PartnerFigures, PeriodComputation,
};
use crate::domain::money::{ExactSum, Money, format_scaled};
use crate::eligibility;
use crate::ledger::{self, Balances};

impl PeriodComputer<'_> {
    /// Settles every partner against the balances of the last closed period.
    pub fn finish(
        self,
        balances: &HashMap<String, Balances>,
    ) -> Result<PeriodComputation, ComputeError> {
        let mut categories_by_partner: HashMap<u32, Vec<CategoryLine>> = HashMap::new();
        for ((index, booking, month, category, currency, rate, fx), totals) in &self.categories {
            let rate_text = rate
                .and_then(|r| self.rates.get(&r))
                .map(|r| r.text.clone());
            // FX rates are keyed by the billing month (SPEC §3): the row's month is its period.
            let fx = fx.and_then(|r| self.rates.get(&r)).map(|r| AppliedFx {
                rate: r.text.clone(),
                period: *month,
            });
            categories_by_partner
                .entry(*index)
                .or_default()
                .push(CategoryLine {
                    booking: *booking,
                    billing_month: *month,
                    product_category: self.interner.text(*category).to_owned(),
                    line_currency: self.interner.text(*currency).to_owned(),
                    revenue: format_scaled(
                        totals.revenue_micro,
                        crate::domain::money::AMOUNT_SCALE,
                        2,
                    ),
                    earning: earning_text(totals.earning, rate_text.is_some()),
                    rate: rate_text,
                    fx,
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
                partner_name: partner.name.clone(),
                program_id: program.id.clone(),
                reasons: reasons.clone(),
                revenue_lines: accumulator.own_lines,
            });
            let currency = partner.payout_currency;
            let minor = currency
                .minor_units()
                .map_err(|source| ComputeError::NoMinorUnits {
                    partner_id: partner.partner_id.clone(),
                    source,
                })?;
            let before = match balances.get(&partner.partner_id) {
                Some(stored) if stored.currency() == currency => *stored,
                Some(stored) if !stored.is_zero() => {
                    return Err(ComputeError::CurrencyChanged {
                        partner_id: partner.partner_id.clone(),
                        stored: stored.currency(),
                        current: currency,
                    });
                }
                // Nothing stored, or a zero balance left in a former payout currency.
                Some(_) | None => {
                    Balances::zero(currency).map_err(|source| ComputeError::NoMinorUnits {
                        partner_id: partner.partner_id.clone(),
                        source,
                    })?
                }
            };
            let money_error = |source| ComputeError::Money {
                partner_id: partner.partner_id.clone(),
                source,
            };
            let earned = Money::new(accumulator.earned, currency)
                .round_to_minor()
                .map_err(money_error)?;
            let adjustments = Money::new(accumulator.adjustments, currency)
                .round_to_minor()
                .map_err(money_error)?;
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
            )
            .map_err(money_error)?;
            // Every hold and eligibility failure resolved: all lines earn, nothing is held.
            let resolved = |exact: crate::domain::money::ExactSum, unlocked| {
                let mut sum = exact;
                sum.merge(unlocked);
                Money::new(sum, currency).round_to_minor()
            };
            let payable_if_resolved = ledger::settle(
                before,
                resolved(accumulator.earned, accumulator.unlocked_earned).map_err(money_error)?,
                resolved(accumulator.adjustments, accumulator.unlocked_adjustments)
                    .map_err(money_error)?,
                false,
                min_payout,
            )
            .map_err(money_error)?
            .payable;
            let has_lines = accumulator.own_lines + accumulator.late_lines > 0;
            if !(has_lines || !before.is_zero() || !settlement.after.is_zero()) {
                continue;
            }
            let mut categories = categories_by_partner
                .remove(&(index as u32))
                .unwrap_or_default();
            categories.sort_by(|a, b| {
                (
                    a.booking,
                    a.billing_month,
                    &a.product_category,
                    &a.line_currency,
                    &a.rate,
                    &a.fx,
                )
                    .cmp(&(
                        b.booking,
                        b.billing_month,
                        &b.product_category,
                        &b.line_currency,
                        &b.rate,
                        &b.fx,
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
                ineligibility_reasons: reasons,
                payable_if_resolved,
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
            if !stored.is_zero() && !self.master.partners.contains_key(partner_id) {
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

fn earning_text(sum: ExactSum, rated: bool) -> String {
    if !rated {
        return "0".to_owned();
    }
    // Exact to 16 places; shown to the 6 places of converted lines unless more are needed.
    sum.exact_text()
}

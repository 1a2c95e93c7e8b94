//! Row validation (SPEC §2, §7): the checks of one revenue row as text, against the master
//! data snapshot (empty fields, amount, currency, month, partner, FX need), run on many rows at
//! once, and the verdict once the record index has settled the row. Pure: it never reads a
//! file or the store, and a bad row is a verdict, never an error.

use std::sync::RwLock;

use rustc_hash::FxHashMap;

use super::lookup::IdIndex;
use super::record_index::{RecordIndex, RowKey, Settled};
use super::segment::REVENUE_COLUMNS;
use super::{MasterData, Program};
use crate::domain::money::{Currency, DecimalTextError, parse_amount_micro};
use crate::domain::partner::Partner;
use crate::domain::period::Period;
use crate::domain::reasons::RejectReason;
use crate::eligibility;

/// What becomes of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowVerdict {
    Accepted {
        amount_micro: i64,
        month: Period,
        late: bool,
        id_hash: u128,
        content_hash: u64,
    },
    /// An identical repeat of an ingested record: counted, not an exception (SPEC §2).
    Duplicate,
    Rejected(RejectReason, String),
}

/// What the row-local checks found.
#[derive(Debug, Clone)]
pub enum Precheck {
    Rejected(RejectReason, String),
    Valid {
        amount_micro: i64,
        month: Period,
        currency: Currency,
        id_hash: u128,
        content_hash: u64,
        /// Position of the partner in `MasterData::partners`, if it is there.
        partner: Option<u32>,
        /// Why the row is rejected unless the record index finds it a duplicate (unknown
        /// partner, missing FX rate).
        after_index: Option<(RejectReason, String)>,
    },
}

impl Precheck {
    /// What the record index needs of the row; `None` when its own checks rejected it.
    fn key(&self) -> Option<RowKey> {
        match self {
            Precheck::Rejected(..) => None,
            Precheck::Valid {
                id_hash,
                content_hash,
                after_index,
                ..
            } => Some(RowKey {
                id_hash: *id_hash,
                content_hash: *content_hash,
                takes_id: after_index.is_none(),
            }),
        }
    }

    /// The verdict, given what the record index decided.
    fn verdict(&self, settled: Settled, checker: &RowChecker, record_id: &str) -> RowVerdict {
        match (self, settled) {
            (Precheck::Rejected(reason, detail), _) => {
                RowVerdict::Rejected(*reason, detail.clone())
            }
            (_, Settled::Duplicate) => RowVerdict::Duplicate,
            (_, Settled::Conflict) => RowVerdict::Rejected(
                RejectReason::DuplicateConflict,
                format!("record_id `{record_id}` was already ingested with different content"),
            ),
            (
                Precheck::Valid {
                    after_index: Some((reason, detail)),
                    ..
                },
                _,
            ) => RowVerdict::Rejected(*reason, detail.clone()),
            (
                Precheck::Valid {
                    amount_micro,
                    month,
                    id_hash,
                    content_hash,
                    ..
                },
                _,
            ) => RowVerdict::Accepted {
                amount_micro: *amount_micro,
                month: *month,
                late: checker.is_late(*month),
                id_hash: *id_hash,
                content_hash: *content_hash,
            },
        }
    }
}

/// Eligibility of (partner position, month), shared by the cores that check rows.
type EligibilityCache = Vec<RwLock<FxHashMap<(u32, Period), bool>>>;

/// Validates rows against the snapshot and the records already ingested.
pub struct RowChecker<'m> {
    master: &'m MasterData,
    partner_list: Vec<&'m Partner>,
    /// Per partner position, what the row checks need, kept dense: a look at the partner
    /// itself is a cache miss per row.
    payout_terms: Vec<(Currency, Option<&'m Program>)>,
    partners: IdIndex,
    /// Lines of this month or earlier are late: their period is closed (SPEC §3).
    last_closed: Option<Period>,
    pub index: RecordIndex,
    eligible: EligibilityCache,
}

impl<'m> RowChecker<'m> {
    pub fn new(master: &'m MasterData, last_closed: Option<Period>, index: RecordIndex) -> Self {
        let partner_list: Vec<&Partner> = master.partners.values().collect();
        let partners = IdIndex::new(partner_list.iter().map(|p| p.partner_id.as_str()));
        let payout_terms = partner_list
            .iter()
            .map(|p| (p.payout_currency, master.programs.for_type(p.partner_type)))
            .collect();
        Self {
            master,
            partner_list,
            payout_terms,
            partners,
            last_closed,
            index,
            eligible: (0..64).map(|_| RwLock::default()).collect(),
        }
    }

    /// Settles prechecked rows against the record index, in row order.
    /// `record_id(row)` is asked only for the rows it names in a rejection.
    pub fn settle_all<'r>(
        &mut self,
        prechecks: &[&Precheck],
        record_id: impl Fn(usize) -> &'r str,
    ) -> Vec<RowVerdict> {
        let settled = self.index.settle_all(prechecks, |precheck| precheck.key());
        prechecks
            .iter()
            .zip(settled)
            .enumerate()
            .map(|(row, (precheck, settled))| precheck.verdict(settled, self, record_id(row)))
            .collect()
    }

    /// The checks that need nothing but the row and the snapshot (everything but the
    /// record index): safe to run on many rows at once.
    pub fn precheck(&self, fields: &[&str; 7]) -> Precheck {
        let [
            record_id,
            partner_id,
            _customer,
            category,
            billing_month,
            amount,
            currency,
        ] = *fields;
        if fields.iter().any(|v| v.is_empty()) {
            let empty: Vec<&str> = REVENUE_COLUMNS
                .iter()
                .zip(fields)
                .filter(|(_, v)| v.is_empty())
                .map(|(c, _)| *c)
                .collect();
            return Precheck::Rejected(
                RejectReason::MissingField,
                format!("empty `{}`", empty.join("`, `")),
            );
        }
        let amount_micro = match parse_amount_micro(amount) {
            Ok(value) => value,
            Err(DecimalTextError::NotDecimal) => {
                return Precheck::Rejected(
                    RejectReason::InvalidAmount,
                    format!("amount `{amount}` is not a plain decimal"),
                );
            }
            Err(e) => {
                return Precheck::Rejected(
                    RejectReason::InvalidAmount,
                    format!("amount `{amount}`: {e}"),
                );
            }
        };
        let Some(line_currency) = Currency::parse(currency) else {
            return Precheck::Rejected(
                RejectReason::InvalidCurrency,
                format!("currency `{currency}` is not an ISO 4217 code"),
            );
        };
        let Ok(month) = billing_month.parse::<Period>() else {
            return Precheck::Rejected(
                RejectReason::InvalidPeriod,
                format!("billing_month `{billing_month}` is not YYYY-MM"),
            );
        };
        let partner = self.partners.get(partner_id);
        let after_index = match partner {
            None => Some((
                RejectReason::UnknownPartner,
                format!("partner `{partner_id}` is not in partners.csv"),
            )),
            Some(index) => self
                .missing_fx(index, category, month, line_currency)
                .map(|missing| (RejectReason::FxRateMissing, missing)),
        };
        Precheck::Valid {
            amount_micro,
            month,
            currency: line_currency,
            id_hash: self.index.hasher().id_key(record_id),
            content_hash: self.index.hasher().content_key(fields),
            partner,
            after_index,
        }
    }

    /// Lines of the last closed month or earlier are late: their period is closed (SPEC §3).
    pub fn is_late(&self, month: Period) -> bool {
        self.last_closed.is_some_and(|closed| month <= closed)
    }

    /// A rate is needed only for an eligible partner's rated line in another currency, and
    /// only the direct rate counts (SPEC §7.15).
    fn missing_fx(
        &self,
        index: u32,
        category: &str,
        month: Period,
        currency: Currency,
    ) -> Option<String> {
        let (payout, program) = self.payout_terms[index as usize];
        if currency == payout {
            return None;
        }
        program?.rate(category, month)?;
        if self.master.fx.get(month, currency, payout).is_some() || !self.eligible(index, month) {
            return None;
        }
        Some(format!("no FX rate for {month} {currency}->{payout}"))
    }

    fn eligible(&self, index: u32, month: Period) -> bool {
        let shard = &self.eligible[index as usize % self.eligible.len()];
        // A poisoned lock only means another thread panicked; the cache is still sound.
        if let Some(known) = shard
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(index, month))
        {
            return *known;
        }
        let partner = self.partner_list[index as usize];
        let eligible = eligibility::verdict(self.master, partner, month.as_of_date())
            .is_some_and(|(_, r)| r.is_empty());
        shard
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((index, month), eligible);
        eligible
    }
}

//! Holds, the payout threshold and the `held` / `carried` balances (SPEC §3): a pure state
//! transition per partner and period. Amounts are already rounded to minor units here
//! (`Payable`), all in the partner's payout currency: a second currency is an error.
//! Invariant, checked on every call: nothing is created or destroyed, i.e.
//! `held_before + carried_before + total == payable + held_after + carried_after`.

use std::cmp::Ordering;

pub use crate::domain::balance::Balances;
use crate::domain::money::{MoneyError, Payable};
use crate::domain::reasons::PayoutStatus;

/// The figures of one partner's period, as `payouts.csv` and the statement show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub earned: Payable,
    pub adjustments: Payable,
    pub released: Payable,
    pub carried_in: Payable,
    pub payable: Payable,
    /// Balances after the period.
    pub after: Balances,
    pub status: PayoutStatus,
}

/// Settles one period. `is_held` is whether any hold reason applies; `min_payout` is the
/// program's threshold for the partner's payout currency. Every amount must be in the
/// currency of `before`.
pub fn settle(
    before: Balances,
    earned: Payable,
    adjustments: Payable,
    is_held: bool,
    min_payout: Payable,
) -> Result<Settlement, MoneyError> {
    let total = earned.checked_add(adjustments)?;
    let carried_in = before.carried();
    let zero = Payable::zero(before.currency())?;
    let settlement = if is_held {
        Settlement {
            earned,
            adjustments,
            released: zero,
            carried_in,
            payable: zero,
            after: Balances::new(before.held().checked_add(total)?, carried_in)?,
            status: PayoutStatus::Held,
        }
    } else {
        let released = before.held();
        let due = total.checked_add(released)?.checked_add(carried_in)?;
        let (payable, carried, status) =
            if due.checked_cmp(min_payout)? != Ordering::Less && !due.is_negative() {
                (due, zero, PayoutStatus::Payable)
            } else {
                (zero, due, PayoutStatus::BelowThreshold)
            };
        Settlement {
            earned,
            adjustments,
            released,
            carried_in,
            payable,
            after: Balances::new(zero, carried)?,
            status,
        }
    };
    let before_total = before.held().checked_add(carried_in)?.checked_add(total)?;
    let after_total = settlement
        .payable
        .checked_add(settlement.after.held())?
        .checked_add(settlement.after.carried())?;
    assert_eq!(
        before_total, after_total,
        "ledger must neither create nor destroy money"
    );
    Ok(settlement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;
    use proptest::prelude::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn d(text: &str) -> Payable {
        Payable::parse(text, usd()).unwrap()
    }

    fn none() -> Balances {
        Balances::zero(usd()).unwrap()
    }

    fn settle_ok(
        before: Balances,
        earned: &str,
        adjustments: &str,
        held: bool,
        min: &str,
    ) -> Settlement {
        settle(before, d(earned), d(adjustments), held, d(min)).unwrap()
    }

    #[test]
    fn below_threshold_balance_is_carried_to_next_period() {
        let first = settle_ok(none(), "30.00", "0", false, "50.00");
        assert_eq!(first.status, PayoutStatus::BelowThreshold);
        assert_eq!(first.after.carried(), d("30.00"));
        let second = settle_ok(first.after, "25.00", "0", false, "50.00");
        assert_eq!(
            (second.status, second.payable, second.carried_in),
            (PayoutStatus::Payable, d("55.00"), d("30.00"))
        );
        assert!(second.after.is_zero());
    }

    #[test]
    fn held_amounts_are_released_once_no_hold_applies() {
        let before = Balances::new(d("10"), d("5")).unwrap();
        let held = settle_ok(before, "100", "-1", true, "50");
        assert_eq!(
            (
                held.status,
                held.after.held(),
                held.after.carried(),
                held.released
            ),
            (PayoutStatus::Held, d("109"), d("5"), d("0"))
        );
        let released = settle_ok(held.after, "0", "0", false, "50");
        assert_eq!(
            (released.released, released.payable, released.status),
            (d("109"), d("114"), PayoutStatus::Payable)
        );
    }

    #[test]
    fn negative_due_is_always_carried() {
        let s = settle_ok(none(), "-20", "0", false, "0");
        assert_eq!(
            (s.status, s.after.carried(), s.payable),
            (PayoutStatus::BelowThreshold, d("-20"), d("0"))
        );
    }

    #[test]
    fn an_amount_in_another_currency_is_refused() {
        let eur = Currency::parse("EUR").unwrap();
        let euros = Payable::parse("10", eur).unwrap();
        let mixed = Err(MoneyError::MixedCurrencies(usd(), eur));
        assert_eq!(settle(none(), d("1"), euros, false, d("0")), mixed);
        assert_eq!(settle(none(), d("1"), d("0"), false, euros), mixed);
        assert_eq!(
            settle(Balances::zero(eur).unwrap(), d("1"), d("0"), true, d("0")),
            Err(MoneyError::MixedCurrencies(eur, usd()))
        );
        assert_eq!(
            Balances::new(d("1"), euros),
            Err(MoneyError::MixedCurrencies(usd(), eur))
        );
    }

    fn amount() -> impl Strategy<Value = Payable> {
        (-10_000_000i128..10_000_000)
            .prop_map(|minor| Payable::from_minor_units(minor, usd()).unwrap())
    }

    proptest! {
        /// Over any sequence of periods, every amount earned ends up paid, held or carried.
        #[test]
        fn balances_are_never_created_or_destroyed(
            periods in proptest::collection::vec((amount(), amount(), any::<bool>()), 1..24),
            min_payout in (0i128..20_000).prop_map(|m| Payable::from_minor_units(m, usd()).unwrap()),
        ) {
            let mut balances = none();
            let (mut total_in, mut paid) = (d("0"), d("0"));
            for (earned, adjustments, is_held) in periods {
                let s = settle(balances, earned, adjustments, is_held, min_payout).unwrap();
                prop_assert!(!s.payable.is_negative());
                prop_assert!(s.payable.is_zero() || s.payable.checked_cmp(min_payout).unwrap() != Ordering::Less);
                prop_assert_eq!(s.status == PayoutStatus::Held, is_held);
                prop_assert!(is_held || s.after.held().is_zero());
                total_in = total_in.checked_add(earned).unwrap().checked_add(adjustments).unwrap();
                paid = paid.checked_add(s.payable).unwrap();
                balances = s.after;
            }
            prop_assert_eq!(
                total_in,
                paid.checked_add(balances.held()).unwrap().checked_add(balances.carried()).unwrap()
            );
        }
    }
}

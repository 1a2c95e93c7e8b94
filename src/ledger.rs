//! Holds, the payout threshold and the `held` / `carried` balances (SPEC §3): a pure state
//! transition per partner and period. Amounts are already rounded to minor units here.
//! Invariant, checked on every call: nothing is created or destroyed, i.e.
//! `held_before + carried_before + total == payable + held_after + carried_after`.

use rust_decimal::Decimal;

pub use crate::domain::balance::Balances;
use crate::domain::reasons::PayoutStatus;

/// The figures of one partner's period, as `payouts.csv` and the statement show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub earned: Decimal,
    pub adjustments: Decimal,
    pub released: Decimal,
    pub carried_in: Decimal,
    pub payable: Decimal,
    /// Balances after the period.
    pub after: Balances,
    pub status: PayoutStatus,
}

/// Settles one period. `is_held` is whether any hold reason applies; `min_payout` is the
/// program's threshold for the partner's payout currency.
pub fn settle(
    before: Balances,
    earned: Decimal,
    adjustments: Decimal,
    is_held: bool,
    min_payout: Decimal,
) -> Settlement {
    let total = earned + adjustments;
    let carried_in = before.carried;
    let settlement = if is_held {
        Settlement {
            earned,
            adjustments,
            released: Decimal::ZERO,
            carried_in,
            payable: Decimal::ZERO,
            after: Balances {
                held: before.held + total,
                carried: before.carried,
            },
            status: PayoutStatus::Held,
        }
    } else {
        let released = before.held;
        let due = total + released + carried_in;
        let (payable, carried, status) = if due >= min_payout && due >= Decimal::ZERO {
            (due, Decimal::ZERO, PayoutStatus::Payable)
        } else {
            (Decimal::ZERO, due, PayoutStatus::BelowThreshold)
        };
        Settlement {
            earned,
            adjustments,
            released,
            carried_in,
            payable,
            after: Balances {
                held: Decimal::ZERO,
                carried,
            },
            status,
        }
    };
    assert_eq!(
        before.held + before.carried + total,
        settlement.payable + settlement.after.held + settlement.after.carried,
        "ledger must neither create nor destroy money"
    );
    settlement
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn below_threshold_balance_is_carried_to_next_period() {
        let first = settle(Balances::default(), d("30.00"), d("0"), false, d("50.00"));
        assert_eq!(first.status, PayoutStatus::BelowThreshold);
        assert_eq!(first.after.carried, d("30.00"));
        let second = settle(first.after, d("25.00"), d("0"), false, d("50.00"));
        assert_eq!(
            (second.status, second.payable, second.carried_in),
            (PayoutStatus::Payable, d("55.00"), d("30.00"))
        );
        assert!(second.after.is_zero());
    }

    #[test]
    fn held_amounts_are_released_once_no_hold_applies() {
        let held = settle(
            Balances {
                held: d("10"),
                carried: d("5"),
            },
            d("100"),
            d("-1"),
            true,
            d("50"),
        );
        assert_eq!(
            (
                held.status,
                held.after.held,
                held.after.carried,
                held.released
            ),
            (PayoutStatus::Held, d("109"), d("5"), d("0"))
        );
        let released = settle(held.after, d("0"), d("0"), false, d("50"));
        assert_eq!(
            (released.released, released.payable, released.status),
            (d("109"), d("114"), PayoutStatus::Payable)
        );
    }

    #[test]
    fn negative_due_is_always_carried() {
        let s = settle(Balances::default(), d("-20"), d("0"), false, d("0"));
        assert_eq!(
            (s.status, s.after.carried, s.payable),
            (PayoutStatus::BelowThreshold, d("-20"), d("0"))
        );
    }

    fn amount() -> impl Strategy<Value = Decimal> {
        (-10_000_000i64..10_000_000).prop_map(|minor| Decimal::new(minor, 2))
    }

    proptest! {
        /// Over any sequence of periods, every amount earned ends up paid, held or carried.
        #[test]
        fn balances_are_never_created_or_destroyed(
            periods in proptest::collection::vec((amount(), amount(), any::<bool>()), 1..24),
            min_payout in (0i64..20_000).prop_map(|m| Decimal::new(m, 2)),
        ) {
            let mut balances = Balances::default();
            let (mut total_in, mut paid) = (Decimal::ZERO, Decimal::ZERO);
            for (earned, adjustments, is_held) in periods {
                let s = settle(balances, earned, adjustments, is_held, min_payout);
                prop_assert!(s.payable >= Decimal::ZERO);
                prop_assert!(s.payable.is_zero() || s.payable >= min_payout);
                prop_assert_eq!(s.status == PayoutStatus::Held, is_held);
                prop_assert!(is_held || s.after.held.is_zero());
                total_in += earned + adjustments;
                paid += s.payable;
                balances = s.after;
            }
            prop_assert_eq!(total_in, paid + balances.held + balances.carried);
        }
    }
}

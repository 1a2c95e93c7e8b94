//! Balances a partner carries from one period to the next (SPEC §3): `held` and `carried`, in
//! its payout currency, rounded to minor units. `ledger` moves them; the store keeps them.

use rust_decimal::Decimal;

use super::money::Currency;

/// A partner's balances in its payout currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    pub held: Decimal,
    pub carried: Decimal,
}

impl Balances {
    pub fn is_zero(&self) -> bool {
        self.held.is_zero() && self.carried.is_zero()
    }
}

/// A partner's balances as the store holds them after the last closed period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBalance {
    pub currency: Currency,
    pub balances: Balances,
}

//! Balances a partner carries from one period to the next (SPEC §3): `held` and `carried`, in
//! its payout currency, rounded to minor units. `ledger` moves them; the store keeps them.

use super::money::{Currency, MoneyError, NoMinorUnits, Payable};

/// A partner's balances, both in its payout currency (the type refuses two currencies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    held: Payable,
    carried: Payable,
}

impl Balances {
    pub fn new(held: Payable, carried: Payable) -> Result<Self, MoneyError> {
        if held.currency() != carried.currency() {
            return Err(MoneyError::MixedCurrencies(
                held.currency(),
                carried.currency(),
            ));
        }
        Ok(Self { held, carried })
    }

    /// No balance, in `currency` (a partner's first period).
    pub fn zero(currency: Currency) -> Result<Self, NoMinorUnits> {
        let zero = Payable::zero(currency)?;
        Ok(Self {
            held: zero,
            carried: zero,
        })
    }

    pub fn held(&self) -> Payable {
        self.held
    }

    pub fn carried(&self) -> Payable {
        self.carried
    }

    pub fn currency(&self) -> Currency {
        self.held.currency()
    }

    pub fn is_zero(&self) -> bool {
        self.held.is_zero() && self.carried.is_zero()
    }
}

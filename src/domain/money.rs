//! Exact money: currencies, validated decimal text, fixed-point line arithmetic and
//! half-even rounding. The only module that rounds (SPEC §3). Floats never appear here.
//!
//! Scales: revenue amounts are integers of 10^-6 (`AMOUNT_SCALE`, SPEC §7.5 allows at most 6
//! decimal places), rates and FX rates integers of 10^-10 (`RATE_SCALE`), so an unconverted line
//! earning is exact at scale 16 (`EARNING_SCALE`). amount × rate × FX is computed in 256 bits,
//! because it can need more than the 28 digits of `rust_decimal` or the 38 of `i128`.

use std::fmt;

use ethnum::I256;

/// Decimal places of a revenue amount, as validated (SPEC §7.5).
pub const AMOUNT_SCALE: u32 = 6;
/// Decimal places a program rate or an FX rate may have; more is a configuration error.
pub const RATE_SCALE: u32 = 10;
/// Scale of an exact line earning and of period sums before rounding.
pub const EARNING_SCALE: u32 = AMOUNT_SCALE + RATE_SCALE;
/// Converted lines are rounded to this many places before the period sum (SPEC §3, §7.13).
pub const CONVERTED_SCALE: u32 = 6;

/// ISO 4217 codes that name no money: `XXX` is "no currency" (transactions without one) and
/// `XTS` is reserved for testing. Neither can be a revenue, FX or payout currency.
pub const NOT_MONEY: [&str; 2] = ["XXX", "XTS"];

/// An ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

/// A currency without minor units (gold, SDR, …): amounts in it cannot be rounded for payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} has no minor units: it cannot be a payout currency")]
pub struct NoMinorUnits(pub Currency);

impl Currency {
    /// Strictly three upper-case letters naming an ISO 4217 code that is money (not `NOT_MONEY`).
    pub fn parse(code: &str) -> Option<Self> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        // Every three-letter code looked up once: the parse is then an array index (it runs
        // for every revenue line).
        static CODES: std::sync::OnceLock<Vec<Option<iso_currency::Currency>>> =
            std::sync::OnceLock::new();
        let slot = |bytes: &[u8]| {
            bytes
                .iter()
                .fold(0usize, |at, b| at * 26 + usize::from(b - b'A'))
        };
        let codes = CODES.get_or_init(|| {
            let mut codes = vec![None; 26 * 26 * 26];
            for (at, entry) in codes.iter_mut().enumerate() {
                let letters = [at / 676, at / 26 % 26, at % 26].map(|l| b'A' + l as u8);
                let code = std::str::from_utf8(&letters).unwrap_or_default();
                *entry =
                    iso_currency::Currency::from_code(code).filter(|_| !NOT_MONEY.contains(&code));
            }
            codes
        });
        codes[slot(code.as_bytes())].map(Self)
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Minor units of the currency (2 for USD, 0 for JPY, 3 for KWD); an error for codes such
    /// as XAU that cannot be a payout currency. Never defaulted: a wrong guess mis-rounds money.
    pub fn minor_units(self) -> Result<u32, NoMinorUnits> {
        self.0.exponent().map(u32::from).ok_or(NoMinorUnits(self))
    }
}

impl PartialOrd for Currency {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Currency {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.code().cmp(other.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalTextError {
    #[error("not a plain decimal (expected -?digits[.digits])")]
    NotDecimal,
    #[error("more than {0} decimal places")]
    TooManyPlaces(u32),
    #[error("out of range")]
    OutOfRange,
}

/// Parses `-?digits[.digits]` with at most `max_places` decimals into an integer of
/// 10^-`scale` (`scale >= max_places`). The text is checked before any arithmetic, so no
/// reader can round it first (SPEC §7.5).
pub fn parse_scaled(text: &str, max_places: u32, scale: u32) -> Result<i128, DecimalTextError> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int_part) || frac_part.is_some_and(|f| !digits(f)) {
        return Err(DecimalTextError::NotDecimal);
    }
    let frac = frac_part.unwrap_or("");
    if frac.len() as u32 > max_places {
        return Err(DecimalTextError::TooManyPlaces(max_places));
    }
    let mut value: i128 = 0;
    for b in int_part.bytes().chain(frac.bytes()) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(b - b'0')))
            .ok_or(DecimalTextError::OutOfRange)?;
    }
    let shift = scale - frac.len() as u32;
    value = value
        .checked_mul(10i128.pow(shift))
        .ok_or(DecimalTextError::OutOfRange)?;
    Ok(if negative { -value } else { value })
}

/// A revenue amount in 10^-6 units. Amounts beyond ±9,223,372,036,854.775807 are
/// `OutOfRange`: no single revenue line is that large, and it keeps the column 64-bit.
pub fn parse_amount_micro(text: &str) -> Result<i64, DecimalTextError> {
    let scaled = parse_scaled(text, AMOUNT_SCALE, AMOUNT_SCALE)?;
    i64::try_from(scaled).map_err(|_| DecimalTextError::OutOfRange)
}

/// A program rate or FX rate: its text as configured and its value in 10^-10 units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub scaled: i128,
    pub text: String,
}

impl Rate {
    pub fn parse(text: &str) -> Result<Self, DecimalTextError> {
        let scaled = parse_scaled(text, RATE_SCALE, RATE_SCALE)?;
        Ok(Self {
            scaled,
            text: text.to_owned(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("arithmetic overflow in an exact amount")]
pub struct Overflow;

/// `n / d` rounded half to even. `d` must be positive.
fn div_half_even(n: I256, d: I256) -> I256 {
    debug_assert!(d > I256::ZERO);
    let q = n / d;
    let r = n % d;
    let twice = r.abs() * 2;
    let away = twice > d || (twice == d && q % 2 != I256::ZERO);
    if !away {
        q
    } else if n.is_negative() {
        q - 1
    } else {
        q + 1
    }
}

fn pow10(exp: u32) -> I256 {
    I256::from(10u8).pow(exp)
}

/// The earning of one line at `EARNING_SCALE`: `amount × rate` exactly, or, when the line is
/// converted, `amount × rate × fx` rounded half-even to 6 places (SPEC §3, §7.13).
pub fn line_earning(amount_micro: i64, rate: i128, fx: Option<i128>) -> Result<i128, Overflow> {
    let exact = I256::from(amount_micro) * I256::from(rate);
    let at_earning_scale = match fx {
        None => exact,
        Some(fx) => {
            // amount(6) × rate(10) × fx(10) has scale 26; round to 6, then widen back to 16.
            let converted = exact * I256::from(fx);
            div_half_even(
                converted,
                pow10(EARNING_SCALE + RATE_SCALE - CONVERTED_SCALE),
            ) * pow10(EARNING_SCALE - CONVERTED_SCALE)
        }
    };
    i128::try_from(at_earning_scale).map_err(|_| Overflow)
}

/// An exact, unrounded sum of line earnings, of no currency yet: `Money` gives it one, and
/// `Money::round_to_minor` is the only way to a payable amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExactSum(I256);

impl ExactSum {
    pub fn add(&mut self, earning: i128) {
        // 256 bits hold 2^128 lines of the largest i128; no realistic sum can overflow.
        self.0 += I256::from(earning);
    }

    /// Adds another exact sum (of other lines).
    pub fn merge(&mut self, other: ExactSum) {
        self.0 += other.0;
    }

    /// Half-even to `minor_units` places, in units of 10^-`minor_units`: the rounding of
    /// period totals (SPEC §3), reached only through `Money::round_to_minor`.
    fn round_to_units(self, minor_units: u32) -> Result<i128, Overflow> {
        let rounded = div_half_even(self.0, pow10(EARNING_SCALE - minor_units));
        i128::try_from(rounded).map_err(|_| Overflow)
    }
}

/// Why an operation on money was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0} and {1} cannot be added or compared: the currencies differ")]
    MixedCurrencies(Currency, Currency),
    #[error(transparent)]
    NoMinorUnits(#[from] NoMinorUnits),
    #[error(transparent)]
    Overflow(#[from] Overflow),
    #[error("{0}")]
    Text(#[from] DecimalTextError),
}

fn same_currency(a: Currency, b: Currency) -> Result<(), MoneyError> {
    if a == b {
        Ok(())
    } else {
        Err(MoneyError::MixedCurrencies(a, b))
    }
}

/// An exact, unrounded amount in one currency: a partner's period sum before rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    amount: ExactSum,
    currency: Currency,
}

impl Money {
    pub fn new(amount: ExactSum, currency: Currency) -> Self {
        Self { amount, currency }
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The sum of two amounts in the same currency; mixed currencies are an error.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        same_currency(self.currency, other.currency)?;
        let mut amount = self.amount;
        amount.merge(other.amount);
        Ok(Money { amount, ..self })
    }

    /// Half-even to the currency's minor units. The only rounding of period totals (SPEC §3).
    pub fn round_to_minor(self) -> Result<Payable, MoneyError> {
        let minor = self.currency.minor_units()?;
        let units = self.amount.round_to_units(minor)?;
        Ok(Payable {
            units,
            currency: self.currency,
            minor,
        })
    }

    /// Exact decimal text (a statement line's earning, exact to 16 places) in `currency`,
    /// rounded half-even to its minor units, for display only: the period's payable is rounded
    /// once from the exact sum, never from these. `None` when the text is not such a decimal.
    pub fn round_exact_text(exact: &str, currency: Currency) -> Option<Payable> {
        let scaled = parse_scaled(exact, EARNING_SCALE, EARNING_SCALE).ok()?;
        let mut amount = ExactSum::default();
        amount.add(scaled);
        Money::new(amount, currency).round_to_minor().ok()
    }
}

/// What a partner can be paid, held or carried: an amount already rounded to its currency's
/// minor units. Made by rounding `Money` or by reading text that has no more places than the
/// currency allows (`Payable::parse`), never by rounding text; shown with exactly the
/// currency's minor units (`Display`), without rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Payable {
    /// In 10^-`minor` units of `currency`.
    units: i128,
    currency: Currency,
    minor: u32,
}

impl Payable {
    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Result<Self, NoMinorUnits> {
        Self::from_minor_units(0, currency)
    }

    /// `units` of 10^-minor (cents of USD, yen of JPY).
    pub fn from_minor_units(units: i128, currency: Currency) -> Result<Self, NoMinorUnits> {
        Ok(Self {
            units,
            currency,
            minor: currency.minor_units()?,
        })
    }

    /// Decimal text with at most the currency's minor units (`12.5`, `12.50`, `-3`); more
    /// places are refused, never rounded.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let minor = currency.minor_units()?;
        let units = parse_scaled(text, minor, minor)?;
        Ok(Self {
            units,
            currency,
            minor,
        })
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    pub fn minor_units(self) -> u32 {
        self.minor
    }

    pub fn is_zero(self) -> bool {
        self.units == 0
    }

    pub fn is_negative(self) -> bool {
        self.units < 0
    }

    pub fn checked_add(self, other: Payable) -> Result<Payable, MoneyError> {
        same_currency(self.currency, other.currency)?;
        let units = self.units.checked_add(other.units).ok_or(Overflow)?;
        Ok(Payable { units, ..self })
    }

    pub fn checked_sub(self, other: Payable) -> Result<Payable, MoneyError> {
        same_currency(self.currency, other.currency)?;
        let units = self.units.checked_sub(other.units).ok_or(Overflow)?;
        Ok(Payable { units, ..self })
    }

    /// Orders two amounts of the same currency; mixed currencies are an error.
    pub fn checked_cmp(self, other: Payable) -> Result<std::cmp::Ordering, MoneyError> {
        same_currency(self.currency, other.currency)?;
        Ok(self.units.cmp(&other.units))
    }

    /// The sum of `amounts`, all in `currency`.
    pub fn sum(
        amounts: impl IntoIterator<Item = Payable>,
        currency: Currency,
    ) -> Result<Payable, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Payable::zero(currency)?, Payable::checked_add)
    }
}

/// Exactly the currency's minor units, never `-0` (SPEC §7.12). Never rounds: the amount has
/// no more places than that.
impl fmt::Display for Payable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        write_scaled(&mut text, self.units, self.minor, self.minor);
        f.write_str(&text)
    }
}

/// Writes an integer of 10^-`scale` units as exact decimal text with at least `min_places`
/// decimals (trailing zeros beyond that trimmed).
pub fn format_scaled(value: i128, scale: u32, min_places: u32) -> String {
    let mut text = String::new();
    write_scaled(&mut text, value, scale, min_places);
    text
}

/// `format_scaled` appending to `out`, without allocating: the per-line form.
pub fn write_scaled(out: &mut String, value: i128, scale: u32, min_places: u32) {
    use std::fmt::Write;
    let unit = 10u128.pow(scale);
    let magnitude = value.unsigned_abs();
    // 64-bit division where the numbers allow: 128-bit division is a slow library call.
    let (int_part, frac_part) = match (u64::try_from(magnitude), u64::try_from(unit)) {
        (Ok(m), Ok(u)) => (u128::from(m / u), u128::from(m % u)),
        _ => (magnitude / unit, magnitude % unit),
    };
    if value < 0 && magnitude != 0 {
        out.push('-');
    }
    // Writing to a String cannot fail.
    let _ = write!(out, "{int_part}");
    let mut places = scale as usize;
    let shown = match u64::try_from(frac_part) {
        Ok(mut frac) => {
            while places > min_places as usize && frac % 10 == 0 {
                frac /= 10;
                places -= 1;
            }
            u128::from(frac)
        }
        Err(_) => {
            let mut frac = frac_part;
            while places > min_places as usize && frac % 10 == 0 {
                frac /= 10;
                places -= 1;
            }
            frac
        }
    };
    let padding = (min_places as usize).saturating_sub(places);
    if places + padding > 0 {
        out.push('.');
    }
    if places > 0 {
        // `shown` has at most `places` digits: written zero-padded to that width.
        let _ = write!(out, "{shown:0places$}");
    }
    out.extend(std::iter::repeat_n('0', padding));
}

fn format_digits(negative: bool, digits: String, scale: u32, min_places: u32) -> String {
    let width = scale as usize + 1;
    let padded = format!("{digits:0>width$}");
    let (int_part, frac_part) = padded.split_at(padded.len() - scale as usize);
    let mut frac = frac_part.trim_end_matches('0').to_owned();
    while frac.len() < min_places as usize {
        frac.push('0');
    }
    let is_zero = padded.bytes().all(|b| b == b'0');
    let sign = if negative && !is_zero { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac}")
    }
}

impl ExactSum {
    /// The exact sum as text, with at least 6 decimals.
    pub fn exact_text(self) -> String {
        format_digits(
            self.0.is_negative(),
            self.0.unsigned_abs().to_string(),
            EARNING_SCALE,
            CONVERTED_SCALE,
        )
    }
}

#[cfg(test)]
mod tests;

//! Partner master data as parsed from the snapshot files (SPEC §2).

use chrono::NaiveDate;

use super::money::Currency;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const TEXTS: &'static [&'static str] = &[$($text),+];

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

text_enum! { PartnerType { Direct => "direct", IndirectProvider => "indirect_provider" } }
text_enum! { AgreementKind { Mpn => "mpn", CloudDistributor => "cloud_distributor", Reseller => "reseller" } }
text_enum! { AgreementStatus { Active => "active", Terminated => "terminated" } }
text_enum! { TaxProfile { Complete => "complete", Incomplete => "incomplete", Missing => "missing" } }
text_enum! { PaymentProfile { Validated => "validated", Pending => "pending", Missing => "missing" } }
text_enum! { UserRole { IncentiveAdmin => "incentive_admin", IncentiveUser => "incentive_user", AccountAdmin => "account_admin" } }

#[derive(Debug, Clone)]
pub struct Partner {
    pub partner_id: String,
    pub name: String,
    pub partner_type: PartnerType,
    pub country: String,
    pub payout_currency: Currency,
    pub admin_email: String,
    pub enrolled_on: Option<NaiveDate>,
    pub legacy_portal: bool,
}

/// A date range `valid_from <= date <= valid_to` (open-ended when `valid_to` is empty).
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

impl Validity {
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && self.valid_to.is_none_or(|to| date <= to)
    }
}

#[derive(Debug, Clone)]
pub struct Agreement {
    pub kind: AgreementKind,
    pub status: AgreementStatus,
    pub validity: Validity,
}

#[derive(Debug, Clone)]
pub struct Competency {
    pub competency: String,
    pub validity: Validity,
}

#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub tax: TaxProfile,
    pub payment: PaymentProfile,
}

impl Default for Profile {
    /// A partner absent from `profiles.csv` has both profiles `missing` (SPEC §2).
    fn default() -> Self {
        Self {
            tax: TaxProfile::Missing,
            payment: PaymentProfile::Missing,
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub email: String,
    pub name: String,
    pub role: UserRole,
    pub active: bool,
}

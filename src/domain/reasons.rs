//! Reason codes, spelled exactly as SPEC §2-§3 and the reports spell them.

use std::fmt;

macro_rules! reason_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

reason_enum! {
    /// Why a revenue row or file was rejected (SPEC §2, §7.2), or, for `PARTNER_MISSING`, why
    /// a partner's money is kept out of the period (removed from partners.csv with a balance or
    /// unbooked lines).
    RejectReason {
        InvalidAmount => "INVALID_AMOUNT",
        InvalidCurrency => "INVALID_CURRENCY",
        InvalidPeriod => "INVALID_PERIOD",
        MissingField => "MISSING_FIELD",
        UnknownPartner => "UNKNOWN_PARTNER",
        DuplicateConflict => "DUPLICATE_CONFLICT",
        FxRateMissing => "FX_RATE_MISSING",
        FileRejected => "FILE_REJECTED",
        // Not read exactly: another number of fields than the header, a NUL byte, a field or
        // line past its limit (README, "Fail-closed rules").
        MalformedRow => "MALFORMED_ROW",
        PartnerMissing => "PARTNER_MISSING",
    }
}

impl RejectReason {
    /// Rows rejected for these reasons are retried on every later run (SPEC §2).
    pub fn is_retried(self) -> bool {
        match self {
            RejectReason::UnknownPartner | RejectReason::FxRateMissing => true,
            RejectReason::InvalidAmount
            | RejectReason::InvalidCurrency
            | RejectReason::InvalidPeriod
            | RejectReason::MissingField
            | RejectReason::DuplicateConflict
            | RejectReason::FileRejected
            | RejectReason::MalformedRow
            | RejectReason::PartnerMissing => false,
        }
    }
}

reason_enum! {
    /// Why a partner is not eligible for a period (SPEC §3).
    EligibilityReason {
        CompetencyNotMet => "COMPETENCY_NOT_MET",
        NoActiveMpnAgreement => "NO_ACTIVE_MPN_AGREEMENT",
        NoCloudDistributorAgreement => "NO_CLOUD_DISTRIBUTOR_AGREEMENT",
        NoResellerAgreement => "NO_RESELLER_AGREEMENT",
    }
}

reason_enum! {
    /// Why a partner's amounts are held (SPEC §3).
    HoldReason {
        NotEnrolled => "NOT_ENROLLED",
        PaymentProfileInvalid => "PAYMENT_PROFILE_INVALID",
        TaxProfileIncomplete => "TAX_PROFILE_INCOMPLETE",
    }
}

reason_enum! {
    /// Outcome of a partner's period (SPEC §3).
    PayoutStatus {
        Payable => "PAYABLE",
        BelowThreshold => "BELOW_THRESHOLD",
        Held => "HELD",
    }
}

/// `;`-joined codes, sorted as text and without repeats (SPEC §5).
pub fn join_codes(codes: impl IntoIterator<Item = &'static str>) -> String {
    let mut texts: Vec<&'static str> = codes.into_iter().collect();
    texts.sort_unstable();
    texts.dedup();
    texts.join(";")
}

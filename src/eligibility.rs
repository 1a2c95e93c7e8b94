//! Pure eligibility and hold rules (SPEC §3): (partner, agreements, competencies, profiles,
//! as-of date) -> reason codes. No clock, no I/O: the as-of date is passed in.

use chrono::NaiveDate;

use crate::domain::master::MasterData;
use crate::domain::partner::*;
use crate::domain::program::Program;
use crate::domain::reasons::{EligibilityReason, HoldReason};

/// Reasons the partner is not eligible on `as_of`; empty means eligible.
pub fn ineligibility_reasons(
    partner: &Partner,
    program: &Program,
    agreements: &[Agreement],
    competencies: &[Competency],
    as_of: NaiveDate,
) -> Vec<EligibilityReason> {
    let covered = |kind: AgreementKind| {
        agreements.iter().any(|a| {
            a.kind == kind && a.status == AgreementStatus::Active && a.validity.covers(as_of)
        })
    };
    let mut reasons = Vec::new();
    if !covered(AgreementKind::Mpn) {
        reasons.push(EligibilityReason::NoActiveMpnAgreement);
    }
    match partner.partner_type {
        PartnerType::IndirectProvider if !covered(AgreementKind::CloudDistributor) => {
            reasons.push(EligibilityReason::NoCloudDistributorAgreement)
        }
        PartnerType::Direct if !covered(AgreementKind::Reseller) => {
            reasons.push(EligibilityReason::NoResellerAgreement)
        }
        PartnerType::IndirectProvider | PartnerType::Direct => {}
    }
    let required = &program.required_competencies;
    let competency_met = required.is_empty()
        || competencies
            .iter()
            .any(|c| required.contains(&c.competency) && c.validity.covers(as_of));
    if !competency_met {
        reasons.push(EligibilityReason::CompetencyNotMet);
    }
    reasons.sort();
    reasons
}

/// Every hold that applies on `as_of` (SPEC §3); independent of eligibility (SPEC §7.11).
pub fn hold_reasons(partner: &Partner, profile: Profile, as_of: NaiveDate) -> Vec<HoldReason> {
    let mut reasons = Vec::new();
    if partner.enrolled_on.is_none_or(|enrolled| enrolled > as_of) {
        reasons.push(HoldReason::NotEnrolled);
    }
    if profile.tax != TaxProfile::Complete {
        reasons.push(HoldReason::TaxProfileIncomplete);
    }
    if profile.payment != PaymentProfile::Validated {
        reasons.push(HoldReason::PaymentProfileInvalid);
    }
    reasons.sort();
    reasons
}

/// Convenience over the snapshot: the partner's program and eligibility on `as_of`.
pub fn verdict<'m>(
    master: &'m MasterData,
    partner: &Partner,
    as_of: NaiveDate,
) -> Option<(&'m Program, Vec<EligibilityReason>)> {
    let program = master.programs.for_type(partner.partner_type)?;
    let agreements = master
        .agreements
        .get(&partner.partner_id)
        .map_or(&[][..], Vec::as_slice);
    let competencies = master
        .competencies
        .get(&partner.partner_id)
        .map_or(&[][..], Vec::as_slice);
    Some((
        program,
        ineligibility_reasons(partner, program, agreements, competencies, as_of),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Currency;
    use crate::domain::period::parse_date;

    fn partner(partner_type: PartnerType, enrolled_on: Option<&str>) -> Partner {
        Partner {
            partner_id: "1".into(),
            name: "A".into(),
            partner_type,
            country: "US".into(),
            payout_currency: Currency::parse("USD").unwrap(),
            admin_email: "a@example.com".into(),
            enrolled_on: enrolled_on.and_then(parse_date),
            legacy_portal: false,
        }
    }

    fn program(required: &[&str]) -> Program {
        Program {
            id: "p".into(),
            name: "P".into(),
            partner_type: PartnerType::Direct,
            required_competencies: required.iter().map(|s| s.to_string()).collect(),
            min_payout: Default::default(),
            rate_tables: vec![],
        }
    }

    fn validity(from: &str, to: Option<&str>) -> Validity {
        Validity {
            valid_from: parse_date(from).unwrap(),
            valid_to: to.and_then(parse_date),
        }
    }

    fn agreement(
        kind: AgreementKind,
        status: AgreementStatus,
        from: &str,
        to: Option<&str>,
    ) -> Agreement {
        Agreement {
            kind,
            status,
            validity: validity(from, to),
        }
    }

    #[test]
    fn coverage_is_inclusive_on_both_ends_and_needs_active_status() {
        let as_of = parse_date("2026-10-31").unwrap();
        let p = partner(PartnerType::Direct, None);
        let ok = [
            agreement(
                AgreementKind::Mpn,
                AgreementStatus::Active,
                "2026-10-31",
                None,
            ),
            agreement(
                AgreementKind::Reseller,
                AgreementStatus::Active,
                "2020-01-01",
                Some("2026-10-31"),
            ),
        ];
        assert!(ineligibility_reasons(&p, &program(&[]), &ok, &[], as_of).is_empty());
        let bad = [
            agreement(
                AgreementKind::Mpn,
                AgreementStatus::Terminated,
                "2020-01-01",
                None,
            ),
            agreement(
                AgreementKind::Reseller,
                AgreementStatus::Active,
                "2020-01-01",
                Some("2026-10-30"),
            ),
        ];
        assert_eq!(
            ineligibility_reasons(&p, &program(&["gold"]), &bad, &[], as_of),
            vec![
                EligibilityReason::CompetencyNotMet,
                EligibilityReason::NoActiveMpnAgreement,
                EligibilityReason::NoResellerAgreement
            ]
        );
    }

    #[test]
    fn any_one_required_competency_suffices() {
        let as_of = parse_date("2026-10-31").unwrap();
        let p = partner(PartnerType::IndirectProvider, None);
        let agreements = [
            agreement(
                AgreementKind::Mpn,
                AgreementStatus::Active,
                "2020-01-01",
                None,
            ),
            agreement(
                AgreementKind::CloudDistributor,
                AgreementStatus::Active,
                "2020-01-01",
                None,
            ),
        ];
        let held = [Competency {
            competency: "b".into(),
            validity: validity("2026-01-01", None),
        }];
        assert!(
            ineligibility_reasons(&p, &program(&["a", "b"]), &agreements, &held, as_of).is_empty()
        );
        assert_eq!(
            ineligibility_reasons(&p, &program(&["a"]), &agreements, &held, as_of),
            vec![EligibilityReason::CompetencyNotMet]
        );
    }

    #[test]
    fn holds_collect_every_reason() {
        let as_of = parse_date("2026-10-31").unwrap();
        let complete = Profile {
            tax: TaxProfile::Complete,
            payment: PaymentProfile::Validated,
        };
        assert!(
            hold_reasons(
                &partner(PartnerType::Direct, Some("2026-10-31")),
                complete,
                as_of
            )
            .is_empty()
        );
        assert_eq!(
            hold_reasons(
                &partner(PartnerType::Direct, Some("2026-11-01")),
                Profile::default(),
                as_of
            ),
            vec![
                HoldReason::NotEnrolled,
                HoldReason::PaymentProfileInvalid,
                HoldReason::TaxProfileIncomplete
            ]
        );
    }
}

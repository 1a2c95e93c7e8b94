//! `payout invite` and `payout migrate`: queue the invitations and migration emails due now
//! (SPEC §3). Each email is an outbox row keyed by (kind, partner, program or wave, recipient),
//! so running these commands any number of times queues each email once.

use std::path::Path;

use anyhow::Context;
use chrono::NaiveDate;
use serde_json::json;

use crate::domain::partner::UserRole;
use crate::domain::period::Period;
use crate::domain::status::OutboxKind;
use crate::eligibility;
use crate::ingest::MasterData;
use crate::notify::templates::Language;
use crate::notify::waves::{MigrationStep, Waves, next_step};
use crate::store::{OutboxMessage, Store};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrateSummary {
    pub notified: u64,
    pub reminded: u64,
    pub completed: u64,
}

/// Queues one invitation per (partner, program) for partners found eligible but not enrolled
/// as of the period of the latest successful run. Returns the number newly queued.
pub async fn invite(store: &Store, master: &MasterData) -> anyhow::Result<(Option<Period>, u64)> {
    let Some(period) = store.latest_run_period().await? else {
        return Ok((None, 0));
    };
    let as_of = period.as_of_date();
    let mut messages = Vec::new();
    for partner in master.partners.values() {
        let Some((program, reasons)) = eligibility::verdict(master, partner, as_of) else {
            continue;
        };
        let enrolled = partner.enrolled_on.is_some_and(|d| d <= as_of);
        if !reasons.is_empty() || enrolled {
            continue;
        }
        let language = Language::for_country(&partner.country);
        messages.push(OutboxMessage {
            kind: OutboxKind::Invitation,
            partner_id: partner.partner_id.clone(),
            scope: program.id.clone(),
            recipient: partner.admin_email.clone(),
            recipient_name: partner.name.clone(),
            context: json!({
                "language": language.code(), "partner_name": partner.name, "partner_id": partner.partner_id,
                "program_name": program.name, "program_id": program.id,
            }),
        });
    }
    Ok((Some(period), store.queue_messages(&messages).await?))
}

/// Queues the migration notices and reminders due on `today` for legacy-portal partners.
pub async fn migrate(
    store: &Store,
    master: &MasterData,
    waves_file: &Path,
    today: NaiveDate,
) -> anyhow::Result<MigrateSummary> {
    let waves = Waves::load(waves_file).context("reading migration waves")?;
    let today_text = today.to_string();
    let mut summary = MigrateSummary::default();
    for partner in master.partners.values() {
        let Some(wave) = waves.wave_for(partner) else {
            continue;
        };
        let has_admin = master.users.get(&partner.partner_id).is_some_and(|users| {
            users
                .iter()
                .any(|u| u.active && u.role == UserRole::IncentiveAdmin)
        });
        let progress = store.wave_progress(&partner.partner_id).await?;
        let step = next_step(wave, &waves, today, progress.as_ref(), has_admin);
        let reminder = match step {
            MigrationStep::Nothing => continue,
            MigrationStep::Complete => {
                store
                    .record_migration_complete(&partner.partner_id, &wave.name, &today_text)
                    .await?;
                summary.completed += 1;
                continue;
            }
            MigrationStep::Notify => 0,
            MigrationStep::Remind(n) => n,
        };
        let language = Language::for_country(&partner.country);
        let program_name = master
            .programs
            .for_type(partner.partner_type)
            .map_or("", |p| p.name.as_str());
        let message = OutboxMessage {
            kind: OutboxKind::Migration,
            partner_id: partner.partner_id.clone(),
            // One key per notice: the wave, then `wave#1`, `wave#2` for reminders.
            scope: if reminder == 0 {
                wave.name.clone()
            } else {
                format!("{}#{reminder}", wave.name)
            },
            recipient: partner.admin_email.clone(),
            recipient_name: partner.name.clone(),
            context: json!({
                "language": language.code(), "partner_name": partner.name, "partner_id": partner.partner_id,
                "program_name": program_name, "wave": wave.name, "opens_on": wave.opens_on.to_string(), "reminder": reminder,
            }),
        };
        store
            .record_migration_notice(
                &partner.partner_id,
                &wave.name,
                i64::from(reminder),
                &today_text,
                &message,
            )
            .await?;
        if reminder == 0 {
            summary.notified += 1
        } else {
            summary.reminded += 1
        }
    }
    Ok(summary)
}

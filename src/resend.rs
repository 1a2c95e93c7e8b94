//! `payout resend --period P --partner ID`: once an address is corrected in the master data,
//! the closed statement of `P` goes to the partner's current recipients (SPEC §3) that have
//! not had it, once each, and the resend is recorded (who, when, what it queued). It never
//! changes a figure or reopens a period: the message is composed at send from the statement
//! the close recorded.

use std::path::Path;

use anyhow::{Context, bail};

use crate::domain::period::Period;
use crate::ingest::MasterData;
use crate::run::statement_recipients;
use crate::store::{ResendOutcome, ResendRequest, Store};

/// Longest "requested by" text recorded: a name or login, not a note.
const MAX_REQUESTED_BY_CHARS: usize = 200;

/// Who asks for the resend: `--requested-by`, else the login name (`$USER`, `$LOGNAME`).
/// Recorded with the resend, so it is never guessed: without either, the resend is refused.
pub fn requester(requested_by: Option<String>) -> anyhow::Result<String> {
    let who = requested_by
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .map(|who| who.trim().to_owned())
        .filter(|who| !who.is_empty());
    let Some(who) = who else {
        bail!("cannot tell who asks for this resend: pass --requested-by NAME");
    };
    if who.chars().count() > MAX_REQUESTED_BY_CHARS || who.chars().any(char::is_control) {
        bail!(
            "--requested-by must be a name of at most {MAX_REQUESTED_BY_CHARS} characters, without control characters"
        );
    }
    Ok(who)
}

/// Queues the statement of `partner_id` for the closed `period` to its current recipients
/// that have no message of it yet. Refuses an open period, a partner without a statement for
/// it, and a partner without any recipient in the master data.
pub async fn resend(
    store: &Store,
    data_dir: &Path,
    period: Period,
    partner_id: &str,
    requested_by: &str,
) -> anyhow::Result<ResendOutcome> {
    let period_text = period.to_string();
    if store.close_id(period).await?.is_none() {
        bail!(
            "cannot resend: period {period} is not closed (statements are queued by `payout close`)"
        );
    }
    if store.statement(&period_text, partner_id).await?.is_none() {
        bail!("cannot resend: partner {partner_id} has no statement for {period}");
    }
    let master = MasterData::load(data_dir)
        .with_context(|| format!("reading master data in {}", data_dir.display()))?;
    let recipients = statement_recipients(&master, partner_id);
    if recipients.is_empty() {
        bail!(
            "cannot resend: partner {partner_id} has no recipient in the master data (no active incentive user, not in partners.csv)"
        );
    }
    let outcome = store
        .resend_statement(ResendRequest {
            period: &period_text,
            partner_id,
            requested_by,
            recipients: &recipients,
        })
        .await
        .with_context(|| format!("queueing the statement of partner {partner_id} for {period}"))?;
    tracing::info!(%period, partner_id, requested_by, queued = ?outcome.queued, "statement resent");
    Ok(outcome)
}

//! `payout send`: delivers the outbox. Senders claim rows, compose each message (a statement
//! attaches the PDF the close filed, checked against the SHA-256 the close recorded), and deliver over `--connections` SMTP
//! connections kept open across messages, or as `.eml` files (`notify::delivery`). Temporary
//! failures (4xx, a command not answered within the SMTP timeout) are retried with exponential
//! backoff up to `MAX_SMTP_ATTEMPTS`, and so is a store error while composing a message (the
//! row stays queued); permanent ones are marked failed with the server's reply; an unreachable,
//! refusing or silent server stops the send and leaves every message queued. A message keeps
//! its `Message-ID` for life, so a crash between the server's acceptance and the row being
//! marked sent can at worst send the same message again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::Message;
use lettre::message::Mailbox;
use tokio::task::JoinSet;

use crate::domain::outbox::{ClaimedMessage, DeliveryOutcome};
use crate::domain::statement::StatementRecord;
use crate::domain::status::{OutboxKind, OutboxStatus};
use crate::notify::delivery::{
    self, Attempt, ComposeError, DeliveryConfig, MAX_SMTP_ATTEMPTS, SendSummary, Sender, mailbox,
};
use crate::notify::{Renderer, pdf_sha256};
use crate::store::Store;

/// Backoff cap between two attempts of one message.
const MAX_BACKOFF_MS: u64 = 5 * 60 * 1000;
/// A claim lasts this long; a live sender finishes well within it.
const CLAIM_TTL_MS: i64 = 5 * 60 * 1000;
/// Messages claimed per round.
const CLAIM_BATCH: i64 = 200;
/// A sender records its outcomes after this many messages (one commit each time): a crash
/// can resend at most these, with their same Message-ID.
const RECORD_EVERY: usize = 8;

/// What one sender did with its share of a batch.
#[derive(Default)]
struct SenderReport {
    summary: SendSummary,
    unavailable: Option<String>,
}

fn outcome(
    message: &ClaimedMessage,
    attempt: Attempt,
    retry_base_ms: u64,
    now_ms: i64,
    report: &mut SenderReport,
) -> DeliveryOutcome {
    match attempt {
        Attempt::Sent => {
            report.summary.sent += 1;
            DeliveryOutcome::Sent
        }
        Attempt::Permanent(reason) => {
            tracing::warn!(id = message.id, kind = %message.kind, partner_id = %message.partner_id, %reason, "message failed");
            report.summary.failed += 1;
            DeliveryOutcome::Failed(reason)
        }
        Attempt::Temporary(reason) if message.attempts + 1 >= MAX_SMTP_ATTEMPTS => {
            report.summary.failed += 1;
            DeliveryOutcome::Failed(format!(
                "gave up after {MAX_SMTP_ATTEMPTS} attempts: {reason}"
            ))
        }
        Attempt::Temporary(reason) => {
            report.summary.retried += 1;
            DeliveryOutcome::Retry {
                next_attempt_at_ms: now_ms + backoff_ms(message, retry_base_ms),
                error: reason,
            }
        }
        Attempt::Unavailable(reason) => {
            report.unavailable = Some(reason);
            DeliveryOutcome::Release
        }
        Attempt::NotYet(reason) => {
            report.summary.retried += 1;
            DeliveryOutcome::Deferred {
                next_attempt_at_ms: now_ms + backoff_ms(message, retry_base_ms),
                error: reason,
            }
        }
        Attempt::Stalled(reason) => {
            tracing::warn!(id = message.id, %reason, "mail server not answering");
            report.summary.retried += 1;
            report.unavailable = Some(format!("not answering: {reason}"));
            DeliveryOutcome::Deferred {
                next_attempt_at_ms: now_ms + backoff_ms(message, retry_base_ms),
                error: reason,
            }
        }
    }
}

/// `retry_base_ms` doubled per attempt already made, capped at `MAX_BACKOFF_MS`.
fn backoff_ms(message: &ClaimedMessage, retry_base_ms: u64) -> i64 {
    retry_base_ms
        .saturating_mul(1 << message.attempts.clamp(0, 20))
        .min(MAX_BACKOFF_MS) as i64
}

/// Composes every message of a batch, rendering on every core; a statement's recorded figures
/// are loaded here (a store error is a temporary failure: the row stays queued).
async fn compose_all(
    store: &Store,
    renderer: &Arc<Renderer>,
    from: &Mailbox,
    reports_dir: &Arc<PathBuf>,
    batch: Vec<ClaimedMessage>,
) -> Vec<(ClaimedMessage, Result<Message, ComposeError>)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limit = Arc::new(tokio::sync::Semaphore::new(cores));
    let mut tasks = JoinSet::new();
    for (position, message) in batch.into_iter().enumerate() {
        let (store, renderer, from, limit, reports_dir) = (
            store.clone(),
            renderer.clone(),
            from.clone(),
            limit.clone(),
            reports_dir.clone(),
        );
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let email = load_and_compose(&store, &renderer, &from, &reports_dir, &message).await;
            (position, message, email)
        });
    }
    let mut composed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(item) => composed.push(item),
            Err(e) => {
                tracing::error!(error = %e, "composing a message panicked; it stays claimed and is retried later")
            }
        }
    }
    composed.sort_by_key(|(position, _, _)| *position);
    composed
        .into_iter()
        .map(|(_, message, email)| (message, email))
        .collect()
}

/// Delivers every deliverable message; returns what happened. Fails when the server is
/// unreachable (everything not sent stays queued).
pub async fn send(
    store: &Store,
    renderer: Arc<Renderer>,
    config: &DeliveryConfig,
) -> anyhow::Result<SendSummary> {
    let transport = Arc::new(delivery::transport(config)?);
    let from =
        mailbox("Partner Incentives", &config.from).map_err(|e| anyhow::anyhow!("sender: {e}"))?;
    let claimer = Store::new_claimer();
    let released = store.release_dead_claims().await?;
    if released > 0 {
        tracing::warn!(
            released,
            "released messages claimed by a sender that is gone"
        );
    }
    let reports_dir = Arc::new(config.reports_dir.clone());
    // Messages delivered or failed for good so far, of those queued at the start (hidden when
    // standard error is not a terminal).
    let bar = crate::progress::bar(store.count_outbox(OutboxStatus::Queued).await?, "emails");
    let connections = config.connections.max(1);
    let mut senders: Vec<Sender> = (0..connections).map(|_| Sender::default()).collect();
    let mut summary = SendSummary::default();
    let deadline = tokio::time::Instant::now() + config.max_retry_wait;
    loop {
        let batch = store
            .claim_messages(&claimer, CLAIM_BATCH, CLAIM_TTL_MS)
            .await?;
        if batch.is_empty() {
            match store.next_retry_at().await? {
                Some(at)
                    if tokio::time::Instant::now()
                        + Duration::from_millis((at - store.now_ms()).max(0) as u64)
                        <= deadline =>
                {
                    tokio::time::sleep(Duration::from_millis((at - store.now_ms()).max(0) as u64))
                        .await;
                    continue;
                }
                Some(_) => {
                    summary.queued = store.count_outbox(OutboxStatus::Queued).await?;
                    bar.finish_and_clear();
                    return Ok(summary);
                }
                None => {
                    bar.finish_and_clear();
                    return Ok(summary);
                }
            }
        }
        let composed = compose_all(store, &renderer, &from, &reports_dir, batch).await;
        let mut shares: Vec<Vec<(ClaimedMessage, Result<Message, ComposeError>)>> =
            (0..connections).map(|_| Vec::new()).collect();
        for (index, item) in composed.into_iter().enumerate() {
            shares[index % connections].push(item);
        }
        let mut running = JoinSet::new();
        for (mut sender, share) in senders.drain(..).zip(shares) {
            let bar = bar.clone();
            let (store, transport, claimer, retry_base_ms) = (
                store.clone(),
                transport.clone(),
                claimer.clone(),
                config.retry_base_ms,
            );
            running.spawn(async move {
                let mut report = SenderReport::default();
                let mut pending = Vec::new();
                for (message, email) in share {
                    // Once the server is unreachable, the rest of the share goes back untouched.
                    let recorded = if report.unavailable.is_some() {
                        DeliveryOutcome::Release
                    } else {
                        let attempt = match email {
                            Ok(email) => sender.deliver(&transport, &message, email).await,
                            Err(ComposeError::Store(reason)) => Attempt::Temporary(reason),
                            Err(ComposeError::Permanent(reason)) => Attempt::Permanent(reason),
                            Err(ComposeError::NotYet(reason)) => Attempt::NotYet(reason),
                        };
                        outcome(
                            &message,
                            attempt,
                            retry_base_ms,
                            store.now_ms(),
                            &mut report,
                        )
                    };
                    if matches!(recorded, DeliveryOutcome::Sent | DeliveryOutcome::Failed(_)) {
                        bar.inc(1);
                    }
                    pending.push((message.id, recorded));
                    if pending.len() >= RECORD_EVERY {
                        store.record_deliveries(&claimer, &pending).await?;
                        pending.clear();
                    }
                }
                store.record_deliveries(&claimer, &pending).await?;
                anyhow::Ok((sender, report))
            });
        }
        let mut unavailable = None;
        while let Some(joined) = running.join_next().await {
            let (sender, report) = joined??;
            senders.push(sender);
            summary.sent += report.summary.sent;
            summary.failed += report.summary.failed;
            summary.retried += report.summary.retried;
            if let Some(reason) = report.unavailable {
                unavailable = Some(reason);
            }
        }
        if let Some(reason) = unavailable {
            let queued = store.count_outbox(OutboxStatus::Queued).await?;
            anyhow::bail!(
                "mail server unavailable ({reason}); {queued} message(s) remain queued, nothing lost"
            );
        }
    }
}

async fn load_and_compose(
    store: &Store,
    renderer: &Renderer,
    from: &Mailbox,
    reports_dir: &Path,
    message: &ClaimedMessage,
) -> Result<Message, ComposeError> {
    // A bad recipient fails for good, whatever the store says (checked before loading).
    mailbox(&message.recipient_name, &message.recipient).map_err(ComposeError::Permanent)?;
    let statement = match message.kind {
        OutboxKind::Statement => store
            .statement(&message.scope, &message.partner_id)
            .await
            .map_err(|e| ComposeError::Store(format!("loading the statement: {e}")))?,
        OutboxKind::Invitation | OutboxKind::Migration | OutboxKind::Reminder => None,
    };
    let filed_pdf = match &statement {
        Some(record) => match &record.pdf_sha256 {
            Some(sha256) => Some(filed_statement_pdf(reports_dir, record, sha256).await?),
            None => None,
        },
        None => None,
    };
    delivery::compose(renderer, from, message, statement.as_ref(), filed_pdf)
}

/// The PDF the close filed for `record`, exactly as filed: its SHA-256 must be the one the
/// close recorded. A missing or changed file fails the message for good (it is never rendered
/// again: the partner gets the statement finance closed, or nothing and a reported failure);
/// a statements folder not published yet, or another read error, is temporary.
async fn filed_statement_pdf(
    reports_dir: &Path,
    record: &StatementRecord,
    sha256: &str,
) -> Result<Vec<u8>, ComposeError> {
    let path = reports_dir
        .join(&record.period)
        .join("statements")
        .join(format!("{}.pdf", record.partner_id));
    let pdf = match tokio::fs::read(&path).await {
        Ok(pdf) => pdf,
        // Before the close's reports are published (a crash between its commit and the
        // rename) the folder is not there yet: wait for `payout close` to finish publishing.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path.parent().is_some_and(|folder| !folder.is_dir()) =>
        {
            return Err(ComposeError::NotYet(format!(
                "the statements of {} are not published yet ({} is not there); run `payout close \
                 --period {}` to finish the close",
                record.period,
                path.parent()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                record.period
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ComposeError::Permanent(format!(
                "the filed statement {} is missing; it is not rendered again",
                path.display()
            )));
        }
        Err(e) => {
            return Err(ComposeError::Store(format!(
                "reading the filed statement {}: {e}",
                path.display()
            )));
        }
    };
    let actual = pdf_sha256(&pdf);
    if actual != sha256 {
        return Err(ComposeError::Permanent(format!(
            "the filed statement {} has changed since the close (SHA-256 {actual}, recorded \
             {sha256}); not sent",
            path.display()
        )));
    }
    Ok(pdf)
}

//! `payout send`: delivers the outbox. Senders claim rows, compose each message from the store
//! (the statement PDF is rendered again from the recorded figures), and deliver over a pooled
//! SMTP connection or as `.eml` files. Temporary failures are retried with exponential backoff
//! up to `MAX_SMTP_ATTEMPTS`; permanent ones are marked failed with the server's reply; an
//! unreachable server leaves every message queued. A message keeps its `Message-ID` for life,
//! so a crash between the server's acceptance and the row being marked sent can at worst send
//! the same message again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use tokio::task::JoinSet;

use super::Renderer;
use super::statement::StatementDoc;
use super::templates::{EmailBody, Language};
use crate::store::{ClaimedMessage, Store, now_ms, redact_url};

/// Attempts per message before a temporary failure becomes permanent.
pub const MAX_SMTP_ATTEMPTS: i64 = 8;
/// Backoff cap between two attempts of one message.
const MAX_BACKOFF_MS: u64 = 5 * 60 * 1000;
/// A claim lasts this long; a live sender finishes well within it.
const CLAIM_TTL_MS: i64 = 5 * 60 * 1000;
/// Messages claimed per round.
const CLAIM_BATCH: i64 = 200;
/// SMTP command timeout.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// `smtp://host:port` or `smtps://host:port`; `None` writes `.eml` files to `mail_dir`.
    pub smtp_url: Option<String>,
    pub mail_dir: PathBuf,
    pub from: String,
    /// SMTP connections (and messages in flight) at once.
    pub connections: usize,
    /// First retry delay; doubled on each further attempt.
    pub retry_base_ms: u64,
    /// How long one `send` waits for retries that are due soon before it returns.
    pub max_retry_wait: Duration,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendSummary {
    pub sent: u64,
    pub failed: u64,
    pub retried: u64,
    /// Still queued when `send` returned (retries not yet due).
    pub queued: u64,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// How one delivery attempt ended.
enum Attempt {
    Sent,
    /// 4xx, timeout: try again later.
    Temporary(String),
    /// 5xx, or a message that can never be sent (bad address): give up now.
    Permanent(String),
    /// The server cannot be reached: stop, leave everything queued.
    Unavailable(String),
}

fn transport(config: &DeliveryConfig) -> anyhow::Result<Transport> {
    let Some(url) = &config.smtp_url else {
        std::fs::create_dir_all(&config.mail_dir)?;
        return Ok(Transport::Files(config.mail_dir.clone()));
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| anyhow::anyhow!("SMTP URL {}: {e}", redact_url(url)))?
        .timeout(Some(SMTP_TIMEOUT))
        .pool_config(PoolConfig::new().max_size(config.connections.max(1) as u32));
    // Credentials come from the environment only, never from files or logs.
    if let (Ok(user), Ok(password)) = (
        std::env::var("PAYOUT_SMTP_USERNAME"),
        std::env::var("PAYOUT_SMTP_PASSWORD"),
    ) {
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(Transport::Smtp(builder.build()))
}

/// Why a message cannot be composed: permanent for that message, the batch goes on.
fn mailbox(name: &str, address: &str) -> Result<Mailbox, String> {
    if name.contains(['\r', '\n']) || address.contains(['\r', '\n']) {
        return Err("recipient name or address contains a line break".into());
    }
    let address: Address = address
        .trim()
        .parse()
        .map_err(|e| format!("invalid recipient address `{address}`: {e}"))?;
    Ok(Mailbox::new(
        Some(name.trim().to_owned()).filter(|n| !n.is_empty()),
        address,
    ))
}

async fn compose(
    store: &Store,
    renderer: &Renderer,
    from: &Mailbox,
    message: &ClaimedMessage,
) -> Result<Message, String> {
    let to = mailbox(&message.recipient_name, &message.recipient)?;
    let language = Language::from_code(message.context["language"].as_str().unwrap_or("en"));
    let mut attachment = None;
    let body: EmailBody = match message.kind.as_str() {
        "statement" => {
            let record = store
                .statement(&message.scope, &message.partner_id)
                .await
                .map_err(|e| format!("loading the statement: {e}"))?
                .ok_or_else(|| {
                    format!(
                        "no statement of partner {} for {}",
                        message.partner_id, message.scope
                    )
                })?;
            let doc = StatementDoc::new(&record, &renderer.templates);
            let (_, pdf) = renderer
                .statement(&record)
                .map_err(|e| format!("rendering the statement: {e:#}"))?;
            attachment = Some((
                format!("statement-{}-{}.pdf", record.partner_id, record.period),
                pdf,
            ));
            let context = json!({
                "recipient_name": message.recipient_name, "partner_name": doc.partner_name, "partner_id": doc.partner_id,
                "program_name": doc.program_name, "period": doc.period, "payable": doc.payable, "carried": doc.carried,
                "held": doc.held, "status_text": doc.status_text, "holds": doc.holds,
            });
            renderer
                .templates
                .render_email("statement", Language::from_code(&record.language), &context)
                .map_err(|e| e.to_string())?
        }
        "invitation" | "migration" => renderer
            .templates
            .render_email(&message.kind, language, &message.context)
            .map_err(|e| e.to_string())?,
        other => return Err(format!("unknown message kind `{other}`")),
    };
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain(body.text))
        .singlepart(SinglePart::html(body.html));
    let content = match attachment {
        Some((name, pdf)) => {
            let pdf_type = ContentType::parse("application/pdf").map_err(|e| e.to_string())?;
            MultiPart::mixed()
                .multipart(alternative)
                .singlepart(Attachment::new(name).body(pdf, pdf_type))
        }
        None => alternative,
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(body.subject)
        .message_id(Some(message.message_id.clone()))
        .multipart(content)
        .map_err(|e| format!("cannot build the message: {e}"))
}

async fn deliver(transport: &Transport, message: &ClaimedMessage, email: Message) -> Attempt {
    match transport {
        Transport::Files(dir) => {
            let path = dir.join(format!(
                "{:08}-{}-{}.eml",
                message.id, message.kind, message.partner_id
            ));
            if path.exists() {
                return Attempt::Sent; // written before a crash: once each
            }
            let temporary = path.with_extension("eml.tmp");
            let written = std::fs::write(&temporary, email.formatted())
                .and_then(|()| std::fs::rename(&temporary, &path));
            match written {
                Ok(()) => Attempt::Sent,
                Err(e) => Attempt::Unavailable(format!("writing {}: {e}", path.display())),
            }
        }
        Transport::Smtp(smtp) => match smtp.send(email).await {
            Ok(_) => Attempt::Sent,
            Err(e) if e.is_permanent() => Attempt::Permanent(e.to_string()),
            Err(e) if e.is_transient() || e.is_timeout() => Attempt::Temporary(e.to_string()),
            Err(e) => Attempt::Unavailable(e.to_string()),
        },
    }
}

/// Delivers every deliverable message; returns what happened. Exits with an error when the
/// server is unreachable (everything not sent stays queued).
pub async fn send(
    store: &Store,
    renderer: Arc<Renderer>,
    config: &DeliveryConfig,
) -> anyhow::Result<SendSummary> {
    let transport = transport(config)?;
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
    let mut summary = SendSummary::default();
    let deadline = tokio::time::Instant::now() + config.max_retry_wait;
    loop {
        let batch = store
            .claim_messages(&claimer, CLAIM_BATCH, CLAIM_TTL_MS)
            .await?;
        if batch.is_empty() {
            match store.next_retry_at().await? {
                Some(at) => {
                    let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
                    if tokio::time::Instant::now() + wait > deadline {
                        summary.queued = store
                            .status_report()
                            .await?
                            .outbox
                            .get("queued")
                            .copied()
                            .unwrap_or(0);
                        return Ok(summary);
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
                None => return Ok(summary),
            }
        }
        let mut in_flight = JoinSet::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(config.connections.max(1)));
        for message in batch {
            let (store, renderer, transport, from, limit) = (
                store.clone(),
                renderer.clone(),
                transport.clone(),
                from.clone(),
                limit.clone(),
            );
            in_flight.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let attempt = match compose(&store, &renderer, &from, &message).await {
                    Ok(email) => deliver(&transport, &message, email).await,
                    Err(reason) => Attempt::Permanent(reason),
                };
                (message, attempt)
            });
        }
        let mut unavailable = None;
        while let Some(joined) = in_flight.join_next().await {
            let (message, attempt) = joined?;
            match attempt {
                Attempt::Sent => {
                    store.mark_sent(message.id, &claimer).await?;
                    summary.sent += 1;
                }
                Attempt::Permanent(reason) => {
                    tracing::warn!(id = message.id, kind = %message.kind, partner_id = %message.partner_id, %reason, "message failed");
                    store.mark_failed(message.id, &claimer, &reason).await?;
                    summary.failed += 1;
                }
                Attempt::Temporary(reason) if message.attempts + 1 >= MAX_SMTP_ATTEMPTS => {
                    let reason = format!("gave up after {MAX_SMTP_ATTEMPTS} attempts: {reason}");
                    store.mark_failed(message.id, &claimer, &reason).await?;
                    summary.failed += 1;
                }
                Attempt::Temporary(reason) => {
                    let backoff = config
                        .retry_base_ms
                        .saturating_mul(1 << message.attempts.clamp(0, 20))
                        .min(MAX_BACKOFF_MS);
                    store
                        .mark_retry(message.id, &claimer, now_ms() + backoff as i64, &reason)
                        .await?;
                    summary.retried += 1;
                }
                Attempt::Unavailable(reason) => {
                    store.release_claim(message.id, &claimer).await?;
                    unavailable = Some(reason);
                }
            }
        }
        if let Some(reason) = unavailable {
            let queued = store
                .status_report()
                .await?
                .outbox
                .get("queued")
                .copied()
                .unwrap_or(0);
            anyhow::bail!(
                "mail server unavailable ({reason}); {queued} message(s) remain queued, nothing lost"
            );
        }
    }
}

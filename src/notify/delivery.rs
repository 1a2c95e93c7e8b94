//! `payout send`: delivers the outbox. Senders claim rows, compose each message from the store
//! (the statement PDF is rendered again from the recorded figures), and deliver over
//! `--connections` SMTP connections kept open across messages, or as `.eml` files. Temporary failures are retried with exponential backoff
//! up to `MAX_SMTP_ATTEMPTS`, and so is a store error while composing a message (the row stays
//! queued); permanent ones are marked failed with the server's reply; an unreachable server
//! leaves every message queued. A message keeps its `Message-ID` for life,
//! so a crash between the server's acceptance and the row being marked sent can at worst send
//! the same message again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use tokio::task::JoinSet;

use super::Renderer;
use super::statement::StatementDoc;
use super::templates::{EmailBody, Language};
use crate::domain::status::{OutboxKind, OutboxStatus};
use crate::store::{ClaimedMessage, DeliveryOutcome, Store, now_ms, redact_url};

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
/// A sender records its outcomes after this many messages (one commit each time): a crash
/// can resend at most these, with their same Message-ID.
const RECORD_EVERY: usize = 8;

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

/// Why a message could not be composed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ComposeError {
    /// The store could not be read (a busy or unreachable database): a temporary failure, the
    /// row stays queued and is tried again with backoff.
    Store(String),
    /// The message can never be built as it stands (bad address, missing statement, template
    /// error): that message is failed, the batch goes on.
    Permanent(String),
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

enum Transport {
    /// `smtp://`: connections opened here with TCP_NODELAY, SMTP spoken by lettre. (lettre's
    /// own pool leaves Nagle's algorithm on, which holds the end-of-data line until the server
    /// acknowledges the body: about 40 ms a message against a server that delays ACKs.)
    Plain {
        host: String,
        port: u16,
        credentials: Option<Credentials>,
    },
    /// `smtps://`: lettre's pooled transport with implicit TLS.
    Tls(AsyncSmtpTransport<Tokio1Executor>),
    /// No SMTP URL: `.eml` files.
    Files(PathBuf),
}

/// Credentials come from the environment only, never from files or logs.
fn credentials() -> Option<Credentials> {
    match (
        std::env::var("PAYOUT_SMTP_USERNAME"),
        std::env::var("PAYOUT_SMTP_PASSWORD"),
    ) {
        (Ok(user), Ok(password)) => Some(Credentials::new(user, password)),
        _ => None,
    }
}

fn transport(config: &DeliveryConfig) -> anyhow::Result<Transport> {
    let Some(url) = &config.smtp_url else {
        std::fs::create_dir_all(&config.mail_dir)?;
        return Ok(Transport::Files(config.mail_dir.clone()));
    };
    let parsed =
        url::Url::parse(url).map_err(|e| anyhow::anyhow!("SMTP URL {}: {e}", redact_url(url)))?;
    match parsed.scheme() {
        "smtp" => Ok(Transport::Plain {
            host: parsed
                .host_str()
                .ok_or_else(|| anyhow::anyhow!("SMTP URL {} has no host", redact_url(url)))?
                .to_owned(),
            port: parsed.port().unwrap_or(25),
            credentials: credentials(),
        }),
        "smtps" => {
            let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| anyhow::anyhow!("SMTP URL {}: {e}", redact_url(url)))?
                .timeout(Some(SMTP_TIMEOUT))
                .pool_config(PoolConfig::new().max_size(config.connections.max(1) as u32));
            if let Some(credentials) = credentials() {
                builder = builder.credentials(credentials);
            }
            Ok(Transport::Tls(builder.build()))
        }
        other => anyhow::bail!("SMTP URL scheme `{other}` is not smtp or smtps"),
    }
}

fn classify(e: lettre::transport::smtp::Error) -> Attempt {
    if e.is_permanent() {
        Attempt::Permanent(e.to_string())
    } else if e.is_transient() || e.is_timeout() {
        Attempt::Temporary(e.to_string())
    } else {
        Attempt::Unavailable(e.to_string())
    }
}

/// One sender: owns one connection, reused across messages, reopened when broken.
#[derive(Default)]
struct Sender {
    connection: Option<AsyncSmtpConnection>,
}

impl Sender {
    async fn connect(
        host: &str,
        port: u16,
        credentials: &Option<Credentials>,
    ) -> Result<AsyncSmtpConnection, Attempt> {
        let unavailable =
            |e: String| Attempt::Unavailable(format!("connecting to {host}:{port}: {e}"));
        let stream =
            tokio::time::timeout(SMTP_TIMEOUT, tokio::net::TcpStream::connect((host, port)))
                .await
                .map_err(|_| unavailable("timed out".into()))?
                .map_err(|e| unavailable(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| unavailable(e.to_string()))?;
        let mut connection =
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &ClientId::default())
                .await
                .map_err(classify)?;
        if let Some(credentials) = credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(connection)
    }

    async fn deliver(
        &mut self,
        transport: &Transport,
        message: &ClaimedMessage,
        email: Message,
    ) -> Attempt {
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
                match std::fs::write(&temporary, email.formatted())
                    .and_then(|()| std::fs::rename(&temporary, &path))
                {
                    Ok(()) => Attempt::Sent,
                    Err(e) => Attempt::Unavailable(format!("writing {}: {e}", path.display())),
                }
            }
            Transport::Tls(smtp) => match smtp.send(email).await {
                Ok(_) => Attempt::Sent,
                Err(e) => classify(e),
            },
            Transport::Plain {
                host,
                port,
                credentials,
            } => {
                if self.connection.as_ref().is_none_or(|c| c.has_broken()) {
                    match Self::connect(host, *port, credentials).await {
                        Ok(connection) => self.connection = Some(connection),
                        Err(attempt) => return attempt,
                    }
                }
                // Invariant: a connection was just ensured above.
                let connection = self.connection.as_mut().expect("connected");
                match connection.send(email.envelope(), &email.formatted()).await {
                    Ok(_) => Attempt::Sent,
                    Err(e) => {
                        if connection.has_broken() {
                            self.connection = None;
                        }
                        classify(e)
                    }
                }
            }
        }
    }
}

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
            let backoff = retry_base_ms
                .saturating_mul(1 << message.attempts.clamp(0, 20))
                .min(MAX_BACKOFF_MS);
            DeliveryOutcome::Retry {
                next_attempt_at_ms: now_ms() + backoff as i64,
                error: reason,
            }
        }
        Attempt::Unavailable(reason) => {
            report.unavailable = Some(reason);
            DeliveryOutcome::Release
        }
    }
}

/// Composes every message of a batch, rendering on every core.
async fn compose_all(
    store: &Store,
    renderer: &Arc<Renderer>,
    from: &Mailbox,
    batch: Vec<ClaimedMessage>,
) -> Vec<(ClaimedMessage, Result<Message, ComposeError>)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limit = Arc::new(tokio::sync::Semaphore::new(cores));
    let mut tasks = JoinSet::new();
    for (position, message) in batch.into_iter().enumerate() {
        let (store, renderer, from, limit) =
            (store.clone(), renderer.clone(), from.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let email = compose(&store, &renderer, &from, &message).await;
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
    let transport = Arc::new(transport(config)?);
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
                        + Duration::from_millis((at - now_ms()).max(0) as u64)
                        <= deadline =>
                {
                    tokio::time::sleep(Duration::from_millis((at - now_ms()).max(0) as u64)).await;
                    continue;
                }
                Some(_) => {
                    summary.queued = store.count_outbox(OutboxStatus::Queued).await?;
                    return Ok(summary);
                }
                None => return Ok(summary),
            }
        }
        let composed = compose_all(store, &renderer, &from, batch).await;
        let mut shares: Vec<Vec<(ClaimedMessage, Result<Message, ComposeError>)>> =
            (0..connections).map(|_| Vec::new()).collect();
        for (index, item) in composed.into_iter().enumerate() {
            shares[index % connections].push(item);
        }
        let mut running = JoinSet::new();
        for (mut sender, share) in senders.drain(..).zip(shares) {
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
                        };
                        outcome(&message, attempt, retry_base_ms, &mut report)
                    };
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
) -> Result<Message, ComposeError> {
    use ComposeError::Permanent;
    let to = mailbox(&message.recipient_name, &message.recipient).map_err(Permanent)?;
    let language = Language::from_code(message.context["language"].as_str().unwrap_or("en"));
    let mut attachment = None;
    let body: EmailBody = match message.kind {
        OutboxKind::Statement => {
            let record = store
                .statement(&message.scope, &message.partner_id)
                .await
                .map_err(|e| ComposeError::Store(format!("loading the statement: {e}")))?
                .ok_or_else(|| {
                    Permanent(format!(
                        "no statement of partner {} for {}",
                        message.partner_id, message.scope
                    ))
                })?;
            let doc = StatementDoc::new(&record, &renderer.templates)
                .map_err(|e| ComposeError::Permanent(format!("rendering the statement: {e}")))?;
            let (_, pdf) = renderer
                .statement(&record)
                .map_err(|e| Permanent(format!("rendering the statement: {e:#}")))?;
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
                .render_email(
                    OutboxKind::Statement.as_str(),
                    Language::from_code(&record.language),
                    &context,
                )
                .map_err(|e| Permanent(e.to_string()))?
        }
        OutboxKind::Invitation | OutboxKind::Migration => renderer
            .templates
            .render_email(message.kind.as_str(), language, &message.context)
            .map_err(|e| Permanent(e.to_string()))?,
        // No template: nothing queues it, and such a row fails for good as it always has.
        OutboxKind::Reminder => {
            return Err(Permanent(format!(
                "unknown message kind `{}`",
                message.kind
            )));
        }
    };
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::plain(body.text))
        .singlepart(SinglePart::html(body.html));
    let content = match attachment {
        Some((name, pdf)) => {
            let pdf_type =
                ContentType::parse("application/pdf").map_err(|e| Permanent(e.to_string()))?;
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
        .map_err(|e| Permanent(format!("cannot build the message: {e}")))
}

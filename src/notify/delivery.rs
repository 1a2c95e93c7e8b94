//! Composing and delivering one message: the SMTP transports (`smtp://` over connections kept
//! open across messages, `smtps://`, or `.eml` files without an SMTP URL), how a server's reply
//! classifies an attempt (sent, temporary, permanent, unreachable), and the MIME message built
//! from a claimed outbox row and, for a statement, its recorded figures (the PDF is rendered
//! again from them). Which rows to send, retries and recording outcomes are `crate::send`'s:
//! nothing here touches the store.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;

use super::Renderer;
use super::statement::StatementDoc;
use super::templates::{EmailBody, Language};
use crate::domain::outbox::ClaimedMessage;
use crate::domain::redact::redact_url;
use crate::domain::statement::StatementRecord;
use crate::domain::status::OutboxKind;

/// Attempts per message before a temporary failure becomes permanent.
pub const MAX_SMTP_ATTEMPTS: i64 = 8;
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

/// Why the delivery cannot start: its configuration, or the mail directory.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{0}")]
    Config(String),
    /// The cause is in the message, not also chained as a source (it would print twice).
    #[error("mail directory {dir}: {error}")]
    MailDir { dir: String, error: std::io::Error },
}

/// Why a message could not be composed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeError {
    /// The store could not be read (a busy or unreachable database): a temporary failure, the
    /// row stays queued and is tried again with backoff.
    Store(String),
    /// The message can never be built as it stands (bad address, missing statement, template
    /// error): that message is failed, the batch goes on.
    Permanent(String),
}

/// How one delivery attempt ended.
pub enum Attempt {
    Sent,
    /// 4xx, timeout: try again later.
    Temporary(String),
    /// 5xx, or a message that can never be sent (bad address): give up now.
    Permanent(String),
    /// The server cannot be reached: stop, leave everything queued.
    Unavailable(String),
}

pub enum Transport {
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

pub fn transport(config: &DeliveryConfig) -> Result<Transport, DeliveryError> {
    let Some(url) = &config.smtp_url else {
        std::fs::create_dir_all(&config.mail_dir).map_err(|error| DeliveryError::MailDir {
            dir: config.mail_dir.display().to_string(),
            error,
        })?;
        return Ok(Transport::Files(config.mail_dir.clone()));
    };
    let parsed = url::Url::parse(url)
        .map_err(|e| DeliveryError::Config(format!("SMTP URL {}: {e}", redact_url(url))))?;
    match parsed.scheme() {
        "smtp" => Ok(Transport::Plain {
            host: parsed
                .host_str()
                .ok_or_else(|| {
                    DeliveryError::Config(format!("SMTP URL {} has no host", redact_url(url)))
                })?
                .to_owned(),
            port: parsed.port().unwrap_or(25),
            credentials: credentials(),
        }),
        "smtps" => {
            let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| DeliveryError::Config(format!("SMTP URL {}: {e}", redact_url(url))))?
                .timeout(Some(SMTP_TIMEOUT))
                .pool_config(PoolConfig::new().max_size(config.connections.max(1) as u32));
            if let Some(credentials) = credentials() {
                builder = builder.credentials(credentials);
            }
            Ok(Transport::Tls(builder.build()))
        }
        other => Err(DeliveryError::Config(format!(
            "SMTP URL scheme `{other}` is not smtp or smtps"
        ))),
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
pub struct Sender {
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

    pub async fn deliver(
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

/// Why a message cannot be composed: permanent for that message, the batch goes on.
pub fn mailbox(name: &str, address: &str) -> Result<Mailbox, String> {
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

/// Builds the message of `message`; a statement's comes with its recorded figures, which the
/// caller loaded (`None`: there is no statement, and the message can never be sent).
pub fn compose(
    renderer: &Renderer,
    from: &Mailbox,
    message: &ClaimedMessage,
    statement: Option<&StatementRecord>,
) -> Result<Message, ComposeError> {
    use ComposeError::Permanent;
    let to = mailbox(&message.recipient_name, &message.recipient).map_err(Permanent)?;
    let language = Language::from_code(message.context["language"].as_str().unwrap_or("en"));
    let mut attachment = None;
    let body: EmailBody = match message.kind {
        OutboxKind::Statement => {
            let record = statement.ok_or_else(|| {
                Permanent(format!(
                    "no statement of partner {} for {}",
                    message.partner_id, message.scope
                ))
            })?;
            let doc = StatementDoc::new(record, &renderer.templates)
                .map_err(|e| ComposeError::Permanent(format!("rendering the statement: {e}")))?;
            let (_, pdf) = renderer
                .statement(record)
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

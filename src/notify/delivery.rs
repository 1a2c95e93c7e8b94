//! Composing and delivering one message: the transports (SMTP sessions kept open across
//! messages, see `notify::smtp`, or `.eml` files without an SMTP URL), how an attempt ended
//! (sent, temporary, permanent, unavailable, stalled), and the MIME message built
//! from a claimed outbox row and, for a statement, its recorded figures and the PDF the close
//! filed (attached byte for byte; rendered again only for statements closed before PDFs were
//! filed with their hash). Which rows to send, retries and recording outcomes are `crate::send`'s:
//! nothing here touches the store.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::{Address, Message};
use serde_json::json;

use super::Renderer;
use super::smtp::{SmtpServer, SmtpSettings};
use super::statement::StatementDoc;
use super::templates::{EmailBody, Language};
use crate::domain::outbox::ClaimedMessage;
use crate::domain::statement::StatementRecord;
use crate::domain::status::OutboxKind;

/// Attempts per message before a temporary failure becomes permanent.
pub const MAX_SMTP_ATTEMPTS: i64 = 8;

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// `smtp://host:port[?tls=required|opportunistic|none]` or `smtps://host:port`, with its
    /// CA file and step timeout; `None` writes `.eml` files to `mail_dir`.
    pub smtp: Option<SmtpSettings>,
    pub mail_dir: PathBuf,
    pub from: String,
    /// The reports folder: statement PDFs are attached from `<period>/statements/` as filed.
    pub reports_dir: PathBuf,
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
    /// The message cannot be built yet and nothing is wrong with it (its statement folder is
    /// not published: a close crashed between its commit and the rename): tried again after
    /// its backoff with no attempt counted, so it can never run out of attempts waiting.
    NotYet(String),
}

/// How one delivery attempt ended.
#[derive(Debug)]
pub enum Attempt {
    Sent,
    /// 4xx, or no answer to a command of the message: try again later.
    Temporary(String),
    /// 5xx, or a message that can never be sent (bad address): give up now.
    Permanent(String),
    /// The server cannot be reached or refused the session (no STARTTLS, an untrusted
    /// certificate, credentials rejected): stop, leave everything queued.
    Unavailable(String),
    /// The server took the connection but did not answer in time (no greeting, no reply to
    /// EHLO, STARTTLS or AUTH): a temporary failure of the server, not of the message. Stop;
    /// this message is tried again after its backoff (no attempt counted), the rest stay queued.
    Stalled(String),
    /// Not tried: the message cannot be built yet (`ComposeError::NotYet`). Tried again after
    /// its backoff, no attempt counted; the others of the batch go on.
    NotYet(String),
}

pub enum Transport {
    /// `smtp://` or `smtps://`: sessions opened by `notify::smtp`, every step bounded.
    Smtp(SmtpServer),
    /// No SMTP URL: `.eml` files.
    Files(PathBuf),
}

pub fn transport(config: &DeliveryConfig) -> Result<Transport, DeliveryError> {
    let Some(smtp) = &config.smtp else {
        std::fs::create_dir_all(&config.mail_dir).map_err(|error| DeliveryError::MailDir {
            dir: config.mail_dir.display().to_string(),
            error,
        })?;
        return Ok(Transport::Files(config.mail_dir.clone()));
    };
    Ok(Transport::Smtp(SmtpServer::from_settings(smtp)?))
}

/// One sender: owns one connection, reused across messages, reopened when broken.
#[derive(Default)]
pub struct Sender {
    connection: Option<AsyncSmtpConnection>,
}

impl Sender {
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
            Transport::Smtp(server) => {
                let mut connection = match self.connection.take() {
                    Some(connection) if !connection.has_broken() => connection,
                    _ => match server.open().await {
                        Ok(connection) => connection,
                        Err(attempt) => return attempt,
                    },
                };
                match server.transmit(&mut connection, &email).await {
                    Ok(()) => {
                        self.connection = Some(connection);
                        Attempt::Sent
                    }
                    // The session is in an unknown state after any error: the next message
                    // opens a new one.
                    Err(attempt) => attempt,
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

/// Builds the message of `message`; a statement's comes with its recorded figures and the PDF
/// the close filed, which the caller loaded and checked against the recorded hash (`None`:
/// there is no statement, and the message can never be sent). A statement closed before PDFs
/// were filed with their hash has no filed PDF: it is rendered again from the figures.
pub fn compose(
    renderer: &Renderer,
    from: &Mailbox,
    message: &ClaimedMessage,
    statement: Option<&StatementRecord>,
    filed_pdf: Option<Vec<u8>>,
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
            let pdf = match (filed_pdf, &record.pdf_sha256) {
                (Some(pdf), Some(_)) => pdf,
                (None, None) => {
                    renderer
                        .statement(record)
                        .map_err(|e| Permanent(format!("rendering the statement: {e:#}")))?
                        .1
                }
                // Invariant of the caller (`send`); refused rather than rendered again.
                (Some(_), None) | (None, Some(_)) => {
                    return Err(Permanent(
                        "the filed statement PDF was not loaded with its recorded hash".into(),
                    ));
                }
            };
            attachment = Some((
                format!("statement-{}-{}.pdf", record.partner_id, record.period),
                pdf,
            ));
            let context = json!({
                "recipient_name": message.recipient_name, "partner_name": doc.partner_name, "partner_id": doc.partner_id,
                "program_name": doc.program_name, "period": doc.period, "payable": doc.payable, "carried": doc.carried,
                "held": doc.held, "status_text": doc.status_text, "holds": doc.holds, "ineligible": doc.ineligible,
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

//! The SMTP server of `payout send`: the `--smtp-url` read strictly (`smtp://` with the STARTTLS
//! policy of its `tls=` parameter, or `smtps://`), connections opened here with TCP_NODELAY,
//! and every step of a session (TCP connect, greeting and EHLO, STARTTLS, AUTH, MAIL, RCPT,
//! DATA, the end of the data) bounded by the `smtp_timeout_secs` setting, so a server that
//! accepts the connection and never answers cannot hold `send`. Credentials are sent only over
//! an encrypted connection, and never written to any output or log. Nothing here decides what
//! to do with a failure beyond classifying it (`delivery::Attempt`).

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use super::delivery::{Attempt, DeliveryError};
use crate::domain::redact::redact_url;

/// How long one SMTP step may take when `smtp_timeout_secs` is not set.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// A CA file larger than this is not a certificate file.
const MAX_CA_FILE_BYTES: u64 = 1 << 20;

/// How an `smtp://` connection is encrypted: the URL's `tls` parameter (lettre's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// STARTTLS must succeed before anything else is sent; the default with credentials.
    Required,
    /// STARTTLS when the server offers it, plain otherwise (and then no credentials).
    Opportunistic,
    /// Plain SMTP; the default without credentials, refused with them.
    None,
}

impl TlsPolicy {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "required" => Some(Self::Required),
            "opportunistic" => Some(Self::Opportunistic),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// How the session is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encryption {
    /// `smtp://` with `tls=none`.
    Plain,
    /// `smtp://` upgraded with STARTTLS; `required`: refused when the server does not offer it.
    StartTls { required: bool },
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// Where and how to deliver: read once from the settings, shared by every connection.
pub struct SmtpServer {
    host: String,
    port: u16,
    encryption: Encryption,
    tls: TlsParameters,
    /// From `PAYOUT_SMTP_USERNAME` / `PAYOUT_SMTP_PASSWORD` only; never printed.
    credentials: Option<Credentials>,
    timeout: Duration,
}

/// What the SMTP part of the delivery settings says.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub url: String,
    /// An extra trusted CA certificate (PEM) for a private relay.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

fn config(message: String) -> DeliveryError {
    DeliveryError::Config(message)
}

/// Credentials come from the environment only, both or neither.
fn credentials() -> Result<Option<Credentials>, DeliveryError> {
    let read = |name: &str| match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(config(format!("{name} is not UTF-8"))),
    };
    match (read("PAYOUT_SMTP_USERNAME")?, read("PAYOUT_SMTP_PASSWORD")?) {
        (Some(user), Some(password)) => Ok(Some(Credentials::new(user, password))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(config(
            "PAYOUT_SMTP_USERNAME is set but PAYOUT_SMTP_PASSWORD is not (both or neither)".into(),
        )),
        (None, Some(_)) => Err(config(
            "PAYOUT_SMTP_PASSWORD is set but PAYOUT_SMTP_USERNAME is not (both or neither)".into(),
        )),
    }
}

fn tls_parameters(host: &str, ca_file: Option<&PathBuf>) -> Result<TlsParameters, DeliveryError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = ca_file {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| config(format!("smtp_ca_file {shown}: {e}")))?
            .len();
        if size > MAX_CA_FILE_BYTES {
            return Err(config(format!(
                "smtp_ca_file {shown}: {size} bytes is not a certificate file"
            )));
        }
        let pem = std::fs::read(path).map_err(|e| config(format!("smtp_ca_file {shown}: {e}")))?;
        // lettre reads a file without any certificate as an empty list: refuse it here.
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(config(format!(
                "smtp_ca_file {shown}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
            )));
        }
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| config(format!("smtp_ca_file {shown}: {e}")))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| config(format!("TLS settings for {host}: {e}")))
}

impl SmtpServer {
    /// Reads the URL strictly: an unknown parameter, a `tls` value that is not one of the
    /// three, user info in the URL (credentials come from the environment) or credentials on a
    /// plain connection are refused before anything is sent.
    pub fn from_settings(settings: &SmtpSettings) -> Result<Self, DeliveryError> {
        let shown = redact_url(&settings.url);
        let parsed =
            url::Url::parse(&settings.url).map_err(|e| config(format!("SMTP URL {shown}: {e}")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(config(format!(
                "SMTP URL {shown}: credentials are not read from the URL; set \
                 PAYOUT_SMTP_USERNAME and PAYOUT_SMTP_PASSWORD"
            )));
        }
        let mut tls = None;
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "tls" => {
                    tls = Some(TlsPolicy::parse(&value).ok_or_else(|| {
                        config(format!(
                            "SMTP URL {shown}: tls must be required, opportunistic or none"
                        ))
                    })?)
                }
                // The key only: its value may be a secret.
                other => {
                    return Err(config(format!(
                        "SMTP URL {shown}: unknown parameter `{other}` (only `tls` is read)"
                    )));
                }
            }
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(address)) => address.to_string(),
            Some(url::Host::Ipv6(address)) => address.to_string(),
            None => return Err(config(format!("SMTP URL {shown} has no host"))),
        };
        let credentials = credentials()?;
        let (encryption, default_port) = match (parsed.scheme(), tls) {
            ("smtps", None | Some(TlsPolicy::Required)) => (Encryption::Implicit, 465),
            ("smtps", Some(_)) => {
                return Err(config(format!(
                    "SMTP URL {shown}: smtps:// is encrypted from the start; tls= can only be `required`"
                )));
            }
            ("smtp", Some(TlsPolicy::Required)) => (Encryption::StartTls { required: true }, 25),
            ("smtp", Some(TlsPolicy::Opportunistic)) => {
                (Encryption::StartTls { required: false }, 25)
            }
            ("smtp", Some(TlsPolicy::None)) => (Encryption::Plain, 25),
            // With credentials, STARTTLS is required unless the URL says otherwise.
            ("smtp", None) if credentials.is_some() => {
                (Encryption::StartTls { required: true }, 25)
            }
            ("smtp", None) => (Encryption::Plain, 25),
            (other, _) => {
                return Err(config(format!(
                    "SMTP URL scheme `{other}` is not smtp or smtps"
                )));
            }
        };
        if credentials.is_some() && encryption == Encryption::Plain {
            return Err(config(format!(
                "refusing to send the SMTP credentials (PAYOUT_SMTP_USERNAME, PAYOUT_SMTP_PASSWORD) \
                 over an unencrypted connection: {shown} says tls=none; use tls=required (STARTTLS) \
                 or smtps://. Nothing was sent"
            )));
        }
        Ok(Self {
            tls: tls_parameters(&host, settings.ca_file.as_ref())?,
            port: parsed.port().unwrap_or(default_port),
            host,
            encryption,
            credentials,
            timeout: settings.timeout,
        })
    }

    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `future` bounded by the SMTP timeout; a timeout names the step and the setting.
    async fn step<T>(
        &self,
        step: &str,
        future: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, StepError> {
        match tokio::time::timeout(self.timeout, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StepError::Smtp(e)),
            Err(_) => Err(StepError::TimedOut(format!(
                "{} did not answer {step} within {:?} (smtp_timeout_secs)",
                self.address(),
                self.timeout
            ))),
        }
    }

    /// Opens a session ready for mail: connected, greeted, encrypted as configured and
    /// authenticated. Any failure here is the server's, not a message's: a timeout stalls the
    /// delivery, and a refusal (no STARTTLS, an untrusted certificate, credentials rejected)
    /// makes it unavailable; neither marks a message failed.
    pub async fn open(&self) -> Result<AsyncSmtpConnection, Attempt> {
        let hello = ClientId::default();
        let address = self.address();
        let session = |what: &str, e: StepError| match e {
            StepError::TimedOut(reason) => Attempt::Stalled(reason),
            // A busy server (421 at the greeting, 4xx to STARTTLS or AUTH) is not the
            // message's failure: defer it, no attempt counted.
            StepError::Smtp(e) if e.is_transient() => {
                Attempt::Stalled(format!("{address}: {what}: {e}"))
            }
            StepError::Smtp(e) => Attempt::Unavailable(format!("{address}: {what}: {e}")),
        };
        let mut connection = match self.encryption {
            Encryption::Implicit => self
                .step(
                    "the connection, TLS handshake, greeting and EHLO",
                    AsyncSmtpConnection::connect_tokio1(
                        (self.host.as_str(), self.port),
                        Some(self.timeout),
                        &hello,
                        Some(self.tls.clone()),
                        None,
                    ),
                )
                .await
                .map_err(|e| session("connecting over TLS", e))?,
            Encryption::Plain | Encryption::StartTls { .. } => {
                let stream = match tokio::time::timeout(
                    self.timeout,
                    tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        return Err(Attempt::Unavailable(format!(
                            "connecting to {address}: {e}"
                        )));
                    }
                    Err(_) => {
                        return Err(Attempt::Stalled(format!(
                            "no TCP connection to {address} within {:?} (smtp_timeout_secs)",
                            self.timeout
                        )));
                    }
                };
                stream
                    .set_nodelay(true)
                    .map_err(|e| Attempt::Unavailable(format!("connecting to {address}: {e}")))?;
                self.step(
                    "with its greeting and EHLO",
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello),
                )
                .await
                .map_err(|e| session("greeting", e))?
            }
        };
        if let Encryption::StartTls { required } = self.encryption {
            if connection.can_starttls() {
                self.step(
                    "STARTTLS (command, TLS handshake, EHLO)",
                    connection.starttls(self.tls.clone(), &hello),
                )
                .await
                .map_err(|e| session("STARTTLS", e))?;
            } else if required {
                return Err(Attempt::Unavailable(format!(
                    "{address} does not offer STARTTLS, which the SMTP URL requires (tls=required); \
                     nothing was sent"
                )));
            }
        }
        if let Some(credentials) = &self.credentials {
            if !connection.is_encrypted() {
                return Err(Attempt::Unavailable(format!(
                    "refusing to send the SMTP credentials over an unencrypted connection: \
                     {address} does not offer STARTTLS; nothing was sent"
                )));
            }
            self.step(
                "AUTH",
                connection.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
            )
            .await
            .map_err(|e| session("authentication", e))?;
        }
        Ok(connection)
    }

    /// Sends one message on an open session, each command bounded by the timeout. Any error
    /// leaves the session unusable (the caller drops it).
    pub async fn transmit(
        &self,
        connection: &mut AsyncSmtpConnection,
        email: &Message,
    ) -> Result<(), Attempt> {
        let envelope = email.envelope();
        let body = email.formatted();
        let mut options = Vec::new();
        // As lettre's own `send`: SMTPUTF8 for non-ASCII addresses, 8BITMIME for a body that
        // is not ASCII, each only when the server offers it.
        let non_ascii_address = envelope
            .to()
            .iter()
            .chain(envelope.from())
            .any(|a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii_address {
            if !connection
                .server_info()
                .supports_feature(Extension::SmtpUtfEight)
            {
                return Err(Attempt::Permanent(
                    "a non-ASCII address, and the server does not support SMTPUTF8".into(),
                ));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !body.is_ascii() {
            if !connection
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return Err(Attempt::Permanent(
                    "a non-ASCII body, and the server does not support 8BITMIME".into(),
                ));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let message = |e: StepError| match e {
            // The server may have the message: tried again later, with the same Message-ID.
            StepError::TimedOut(reason) => Attempt::Temporary(reason),
            StepError::Smtp(e) => classify(e),
        };
        self.step(
            "MAIL FROM",
            connection.command(Mail::new(envelope.from().cloned(), options)),
        )
        .await
        .map_err(message)?;
        for recipient in envelope.to() {
            self.step(
                "RCPT TO",
                connection.command(Rcpt::new(recipient.clone(), Vec::new())),
            )
            .await
            .map_err(message)?;
        }
        self.step("DATA", connection.command(Data))
            .await
            .map_err(message)?;
        self.step("the end of the message data", connection.message(&body))
            .await
            .map_err(message)?;
        Ok(())
    }
}

enum StepError {
    TimedOut(String),
    Smtp(lettre::transport::smtp::Error),
}

/// A server's reply to a message: 5xx is permanent, 4xx (and an I/O timeout) temporary,
/// anything else (the connection broke) leaves the server unavailable.
pub fn classify(e: lettre::transport::smtp::Error) -> Attempt {
    if e.is_permanent() {
        Attempt::Permanent(e.to_string())
    } else if e.is_transient() || e.is_timeout() {
        Attempt::Temporary(e.to_string())
    } else {
        Attempt::Unavailable(e.to_string())
    }
}

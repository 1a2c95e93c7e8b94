//! Settings: flags > `PAYOUT_*` environment > `payout.toml` > defaults, as one typed struct.
//! Secrets (database and SMTP URLs with passwords) are never printed; see `store::redact_url`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{Cli, LogFormat};
use crate::domain::statement::Issuer;
use crate::store::redact_url;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://payout.db";
pub const DEFAULT_MAIL_FROM: &str = "incentives@payout.example";
/// The longest `smtp_timeout_secs` accepted: a bound that is no bound is a typo.
const MAX_SMTP_TIMEOUT_SECS: u64 = 600;

#[derive(Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub reports_dir: PathBuf,
    pub database_url: String,
    pub smtp_url: Option<String>,
    /// Extra trusted CA certificate for the SMTP server's TLS.
    pub smtp_ca_file: Option<PathBuf>,
    /// How long one SMTP step may take (`notify::smtp`).
    pub smtp_timeout: Duration,
    pub mail_dir: PathBuf,
    pub mail_from: String,
    pub log_format: LogFormat,
    /// The zone whose calendar date says whether a period has ended (`close`).
    pub time_zone: chrono_tz::Tz,
    /// `close` needs `--approved-by` (issue 15). Default off, so SPEC §6's `close` works as is.
    pub require_approval: bool,
    /// Draft and final CSV reports start with a UTF-8 byte-order mark. Default off.
    pub csv_bom: bool,
    /// Who issues the statements (`[issuer]` of `payout.toml`).
    pub issuer: Issuer,
}

/// Written with the URLs redacted, so that logging the settings cannot show a password.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("reports_dir", &self.reports_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("smtp_ca_file", &self.smtp_ca_file)
            .field("smtp_timeout", &self.smtp_timeout)
            .field("mail_dir", &self.mail_dir)
            .field("mail_from", &self.mail_from)
            .field("log_format", &self.log_format)
            .field("time_zone", &self.time_zone)
            .field("require_approval", &self.require_approval)
            .field("csv_bom", &self.csv_bom)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// `payout.toml`: the same names as the flags, all optional.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data: Option<PathBuf>,
    reports: Option<PathBuf>,
    database_url: Option<String>,
    smtp_url: Option<String>,
    smtp_ca_file: Option<PathBuf>,
    smtp_timeout_secs: Option<u64>,
    mail_dir: Option<PathBuf>,
    mail_from: Option<String>,
    log_format: Option<LogFormat>,
    time_zone: Option<String>,
    require_approval: Option<bool>,
    csv_bom: Option<bool>,
    issuer: Option<Issuer>,
}

impl Settings {
    pub fn resolve(cli: &Cli) -> anyhow::Result<Self> {
        let file = read_file_settings(&cli.config)?;
        let reports_dir = cli
            .reports_dir
            .clone()
            .or(file.reports)
            .unwrap_or_else(|| PathBuf::from("reports"));
        Ok(Self {
            data_dir: cli
                .data_dir
                .clone()
                .or(file.data)
                .unwrap_or_else(|| PathBuf::from("fixtures")),
            mail_dir: cli
                .mail_dir
                .clone()
                .or(file.mail_dir)
                .unwrap_or_else(|| reports_dir.join("outbox")),
            reports_dir,
            database_url: cli
                .database_url
                .clone()
                .or(file.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            smtp_url: cli.smtp_url.clone().or(file.smtp_url),
            smtp_ca_file: cli.smtp_ca_file.clone().or(file.smtp_ca_file),
            smtp_timeout: match (cli.smtp_timeout_secs, file.smtp_timeout_secs) {
                (Some(flag), _) => smtp_timeout(flag).map_err(|e| {
                    anyhow::anyhow!("--smtp-timeout-secs (or PAYOUT_SMTP_TIMEOUT_SECS) {flag}: {e}")
                })?,
                (None, Some(key)) => smtp_timeout(key).map_err(|e| {
                    anyhow::anyhow!("{}: smtp_timeout_secs {key}: {e}", cli.config.display())
                })?,
                (None, None) => crate::notify::smtp::DEFAULT_SMTP_TIMEOUT,
            },
            mail_from: cli
                .mail_from
                .clone()
                .or(file.mail_from)
                .unwrap_or_else(|| DEFAULT_MAIL_FROM.to_owned()),
            log_format: cli
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Human),
            time_zone: match (&cli.time_zone, file.time_zone) {
                (Some(flag), _) => parse_time_zone(flag).map_err(|e| {
                    anyhow::anyhow!("--time-zone (or PAYOUT_TIME_ZONE) `{flag}`: {e}")
                })?,
                (None, Some(key)) => parse_time_zone(&key).map_err(|e| {
                    anyhow::anyhow!("{}: time_zone `{key}`: {e}", cli.config.display())
                })?,
                (None, None) => chrono_tz::UTC,
            },
            require_approval: cli
                .require_approval
                .or(file.require_approval)
                .unwrap_or(false),
            csv_bom: cli.csv_bom.or(file.csv_bom).unwrap_or(false),
            issuer: file.issuer.unwrap_or_default(),
        })
    }
}

/// A step timeout of 1 to `MAX_SMTP_TIMEOUT_SECS` seconds.
fn smtp_timeout(secs: u64) -> Result<Duration, String> {
    if (1..=MAX_SMTP_TIMEOUT_SECS).contains(&secs) {
        Ok(Duration::from_secs(secs))
    } else {
        Err(format!("must be 1 to {MAX_SMTP_TIMEOUT_SECS} seconds"))
    }
}

/// An IANA zone name, spelled exactly (`Europe/Dublin`, `UTC`).
fn parse_time_zone(name: &str) -> Result<chrono_tz::Tz, &'static str> {
    name.parse()
        .map_err(|_| "not an IANA time zone name (for example `UTC` or `Europe/Dublin`)")
}

fn read_file_settings(path: &Path) -> anyhow::Result<FileSettings> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            // toml's own text quotes the offending line, which may hold a password: only the
            // line number and the message, with its quoted values left out.
            let line = e.span().map_or(0, |span| {
                1 + text.as_bytes()[..span.start.min(text.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
            });
            anyhow::anyhow!(
                "{}: line {line}: {}",
                path.display(),
                without_quoted_values(e.message())
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileSettings::default()),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

/// `message` with every double-quoted value replaced by `"…"` (keys are quoted with backticks).
fn without_quoted_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (at, part) in message.split('"').enumerate() {
        match at % 2 {
            0 => out.push_str(part),
            _ => out.push_str("\"…\""),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payout_toml_error_never_shows_the_values_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payout.toml");
        for text in [
            "database_url = \"postgres://u:TOMLSECRET1@127.0.0.1:1/db\n",
            "database_url = postgres://u:TOMLSECRET1@127.0.0.1:1/db\n",
            "database_url = [\"postgres://u:TOMLSECRET1@h/db\"]\n",
            "database_url = 5\nsmtp_url = \"smtp://u:TOMLSECRET1@h\"\nx = 1\n",
            "database_ur = \"postgres://u:TOMLSECRET1@h/db\"\n",
            "smtp_password = \"TOMLSECRET1\"\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let error = read_file_settings(&path).err().expect(text).to_string();
            assert!(!error.contains("TOMLSECRET1"), "{error}");
            assert!(error.contains("payout.toml: line "), "{error}");
        }
    }

    #[test]
    fn the_issuer_block_is_read_strictly_from_payout_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payout.toml");
        std::fs::write(
            &path,
            "[issuer]\nname = \"Contoso Payouts Ltd\"\naddress = \"1 Main St\\nDublin\"\nemail = \"payouts@contoso.example\"\n",
        )
        .unwrap();
        let issuer = read_file_settings(&path).unwrap().issuer.unwrap();
        assert_eq!(issuer.name, "Contoso Payouts Ltd");
        assert_eq!(issuer.address, "1 Main St\nDublin");
        assert_eq!(issuer.payment_terms, "");
        std::fs::write(
            &path,
            "[issuer]\npayment_terms = \"Paid by SEPA transfer.\"\n[issuer.payment_terms_by_language]\nde = \"Zahlung per SEPA-Überweisung.\"\n",
        )
        .unwrap();
        let issuer = read_file_settings(&path).unwrap().issuer.unwrap();
        assert_eq!(
            issuer.payment_terms_in("de"),
            Some("Zahlung per SEPA-Überweisung.")
        );
        assert_eq!(
            issuer.payment_terms_in("ko"),
            Some("Paid by SEPA transfer.")
        );
        std::fs::write(
            &path,
            "[issuer]\npayment_terms = \"Paid by SEPA transfer.\"\n[issuer.payment_terms_by_language]\nko = \"  \"\n",
        )
        .unwrap();
        let issuer = read_file_settings(&path).unwrap().issuer.unwrap();
        assert_eq!(
            issuer.payment_terms_in("ko"),
            Some("Paid by SEPA transfer."),
            "an empty entry falls back"
        );
        std::fs::write(
            &path,
            "[issuer]\n[issuer.payment_terms_by_language]\nfr = \"Payé par virement.\"\n",
        )
        .unwrap();
        let error = read_file_settings(&path).err().unwrap().to_string();
        assert!(
            error.contains("line 2") && error.contains("`fr` is not a statement language"),
            "{error}"
        );
        std::fs::write(&path, "[issuer]\nname = \"X\"\nadress = \"typo\"\n").unwrap();
        let error = read_file_settings(&path).err().unwrap().to_string();
        assert!(
            error.contains("line 3") && error.contains("adress"),
            "{error}"
        );
    }

    #[test]
    fn debug_output_shows_no_password() {
        let settings = Settings {
            data_dir: "fixtures".into(),
            reports_dir: "reports".into(),
            database_url: "postgres://payout:S3cr#t@db.example/payout".into(),
            smtp_url: Some("smtp://mailer:M41l?pw@mail.example:587".into()),
            smtp_ca_file: None,
            smtp_timeout: Duration::from_secs(30),
            mail_dir: "reports/outbox".into(),
            mail_from: DEFAULT_MAIL_FROM.into(),
            log_format: LogFormat::Human,
            time_zone: chrono_tz::UTC,
            require_approval: false,
            csv_bom: false,
            issuer: Issuer::default(),
        };
        let text = format!("{settings:?}");
        assert!(!text.contains("S3cr") && !text.contains("M41l"), "{text}");
        assert!(
            text.contains("postgres://payout:***@db.example/payout"),
            "{text}"
        );
    }
}

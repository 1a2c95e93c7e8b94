//! Everything partners receive: payment statements (HTML and PDF), and the emails of the
//! outbox (statements, invitations, migration notices and reminders), delivered exactly once
//! per (kind, partner, period or wave, recipient) over SMTP or as `.eml` files.

pub mod delivery;
pub mod pdf;
pub mod smtp;
pub mod statement;
pub mod templates;
pub mod waves;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pdf::{FontSet, PdfError};
use statement::{StatementDoc, StatementDocError, StatementRecord};
use templates::{Language, TemplateError, Templates};

/// Why statements could not be rendered or filed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Pdf(#[from] PdfError),
    #[error(transparent)]
    Statement(#[from] StatementDocError),
    #[error(transparent)]
    Html(#[from] TemplateError),
    #[error("rendering the statement of partner {partner_id}: {source}")]
    Partner {
        partner_id: String,
        source: Box<RenderError>,
    },
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a statement renderer thread panicked")]
    Panicked,
}

fn write_file(path: PathBuf, bytes: &[u8]) -> Result<(), RenderError> {
    std::fs::write(&path, bytes).map_err(|source| RenderError::Write { path, source })
}

/// The SHA-256 of a statement PDF as the store keeps it (lowercase hex).
pub fn pdf_sha256(pdf: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(pdf))
}

/// Renders statements; load once and share between threads.
pub struct Renderer {
    pub templates: Templates,
    fonts: Arc<FontSet>,
}

impl Renderer {
    pub fn new() -> Result<Self, RenderError> {
        Ok(Self {
            templates: Templates::load(),
            fonts: FontSet::load()?,
        })
    }

    /// The HTML and PDF of one statement.
    pub fn statement(&self, record: &StatementRecord) -> Result<(String, Vec<u8>), RenderError> {
        let doc = StatementDoc::new(record, &self.templates)?;
        let html = self
            .templates
            .render_statement_html(&doc, Language::from_code(&record.language))?;
        let pdf = pdf::render_statement_pdf(&doc, &self.templates, &self.fonts)?;
        Ok((html, pdf))
    }

    /// Writes `<partner_id>.html` and `<partner_id>.pdf` for every record into `dir`, on all
    /// cores, and sets each record's `pdf_sha256` to the hash of the PDF written: those are the
    /// bytes `send` attaches. One partner's failure is reported with its id; nothing is skipped
    /// silently.
    pub fn write_statements(
        &self,
        dir: &Path,
        records: &mut [StatementRecord],
    ) -> Result<(), RenderError> {
        std::fs::create_dir_all(dir).map_err(|source| RenderError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .max(1);
        let chunk = records.len().div_ceil(workers).max(1);
        let bar = crate::progress::bar(records.len() as u64, "statements");
        std::thread::scope(|scope| {
            let handles: Vec<_> = records
                .chunks_mut(chunk)
                .map(|part| {
                    let bar = bar.clone();
                    scope.spawn(move || -> Result<(), RenderError> {
                        for record in part {
                            let (html, pdf) =
                                self.statement(record)
                                    .map_err(|source| RenderError::Partner {
                                        partner_id: record.partner_id.clone(),
                                        source: Box::new(source),
                                    })?;
                            let file = |ext: &str| dir.join(format!("{}.{ext}", record.partner_id));
                            write_file(file("html"), html.as_bytes())?;
                            write_file(file("pdf"), &pdf)?;
                            record.pdf_sha256 = Some(pdf_sha256(&pdf));
                            bar.inc(1);
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|_| Err(RenderError::Panicked)))
        })
    }
}

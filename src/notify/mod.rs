//! Everything partners receive: payment statements (HTML and PDF), and the emails of the
//! outbox (statements, invitations, migration notices and reminders), delivered exactly once
//! per (kind, partner, period or wave, recipient) over SMTP or as `.eml` files.

pub mod delivery;
pub mod pdf;
pub mod smtp;
pub mod statement;
pub mod templates;
pub mod waves;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use pdf::FontSet;
use statement::{StatementDoc, StatementRecord};
use templates::{Language, Templates};

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
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            templates: Templates::load(),
            fonts: FontSet::load()?,
        })
    }

    /// The HTML and PDF of one statement.
    pub fn statement(&self, record: &StatementRecord) -> anyhow::Result<(String, Vec<u8>)> {
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
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
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
                    scope.spawn(move || -> anyhow::Result<()> {
                        for record in part {
                            let (html, pdf) = self.statement(record).with_context(|| {
                                format!("rendering the statement of partner {}", record.partner_id)
                            })?;
                            std::fs::write(dir.join(format!("{}.html", record.partner_id)), html)?;
                            std::fs::write(dir.join(format!("{}.pdf", record.partner_id)), &pdf)?;
                            record.pdf_sha256 = Some(pdf_sha256(&pdf));
                            bar.inc(1);
                        }
                        Ok(())
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("statement renderer panicked")))
            })
        })
    }
}

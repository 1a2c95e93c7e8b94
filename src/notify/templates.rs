//! Templates of statements and emails (files under `src/notify/templates/`, compiled into the
//! binary so that it runs anywhere), and the per-language wording of statements.

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

/// The language of a partner's documents, by its country (`templates/languages.toml`);
/// English for a country not listed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    En,
    Ko,
    Ja,
    De,
}

/// Which country's partners read which language.
const LANGUAGES_BY_COUNTRY: &str = include_str!("templates/languages.toml");

impl Language {
    pub const ALL: &'static [Language] = &[Language::En, Language::Ko, Language::Ja, Language::De];

    pub fn for_country(country: &str) -> Self {
        static TABLE: std::sync::OnceLock<std::collections::HashMap<String, Language>> =
            std::sync::OnceLock::new();
        let table = TABLE.get_or_init(|| {
            // Invariant: the file is compiled in and read by a test; a bad entry is a build
            // defect, not an operational condition.
            let parsed: toml::Table = LANGUAGES_BY_COUNTRY
                .parse()
                .unwrap_or_else(|e| panic!("languages.toml: {e}"));
            parsed
                .iter()
                .map(|(country, code)| {
                    let code = code.as_str().unwrap_or_default();
                    let language = Language::ALL
                        .iter()
                        .copied()
                        .find(|l| l.code() == code)
                        .unwrap_or_else(|| {
                            panic!("languages.toml: {country}: no language `{code}`")
                        });
                    (country.clone(), language)
                })
                .collect()
        });
        table.get(country).copied().unwrap_or(Language::En)
    }

    pub fn from_code(code: &str) -> Self {
        Language::ALL
            .iter()
            .copied()
            .find(|l| l.code() == code)
            .unwrap_or(Language::En)
    }

    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ko => "ko",
            Language::Ja => "ja",
            Language::De => "de",
        }
    }
}

const TEMPLATE_FILES: &[(&str, &str)] = &[
    ("statement.html", include_str!("templates/statement.html")),
    (
        "statement.en.j2",
        include_str!("templates/email/statement.en.j2"),
    ),
    (
        "statement.ko.j2",
        include_str!("templates/email/statement.ko.j2"),
    ),
    (
        "invitation.en.j2",
        include_str!("templates/email/invitation.en.j2"),
    ),
    (
        "invitation.ko.j2",
        include_str!("templates/email/invitation.ko.j2"),
    ),
    (
        "migration.en.j2",
        include_str!("templates/email/migration.en.j2"),
    ),
    (
        "migration.ko.j2",
        include_str!("templates/email/migration.ko.j2"),
    ),
    (
        "statement.ja.j2",
        include_str!("templates/email/statement.ja.j2"),
    ),
    (
        "invitation.ja.j2",
        include_str!("templates/email/invitation.ja.j2"),
    ),
    (
        "migration.ja.j2",
        include_str!("templates/email/migration.ja.j2"),
    ),
    (
        "statement.de.j2",
        include_str!("templates/email/statement.de.j2"),
    ),
    (
        "invitation.de.j2",
        include_str!("templates/email/invitation.de.j2"),
    ),
    (
        "migration.de.j2",
        include_str!("templates/email/migration.de.j2"),
    ),
];

const LABELS_EN: &str = include_str!("templates/labels.en.toml");
const LABELS_KO: &str = include_str!("templates/labels.ko.toml");
const LABELS_JA: &str = include_str!("templates/labels.ja.toml");
const LABELS_DE: &str = include_str!("templates/labels.de.toml");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {source}")]
    Render {
        name: String,
        source: minijinja::Error,
    },
}

/// A rendered email: subject, plain text and HTML bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailBody {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    env: Environment<'static>,
    labels_en: toml::Table,
    labels_ko: toml::Table,
    labels_ja: toml::Table,
    labels_de: toml::Table,
}

impl Templates {
    pub fn load() -> Self {
        let mut env = Environment::new();
        // HTML is escaped in .html files and in the `html` block of emails; text stays text.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        for (name, source) in TEMPLATE_FILES {
            // Invariant: the templates are compiled in and covered by tests; a syntax error
            // is a build defect, not an operational condition.
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
            if name.ends_with(".j2") {
                // The same email file again under an `.html` name: its `html` block escaped.
                env.add_template_owned(format!("{name}.html"), *source)
                    .unwrap_or_else(|e| panic!("template {name}: {e}"));
            }
        }
        let parse = |text: &str| {
            text.parse::<toml::Table>()
                .unwrap_or_else(|e| panic!("labels: {e}"))
        };
        Self {
            env,
            labels_en: parse(LABELS_EN),
            labels_ko: parse(LABELS_KO),
            labels_ja: parse(LABELS_JA),
            labels_de: parse(LABELS_DE),
        }
    }

    fn labels(&self, language: Language) -> &toml::Table {
        match language {
            Language::En => &self.labels_en,
            Language::Ko => &self.labels_ko,
            Language::Ja => &self.labels_ja,
            Language::De => &self.labels_de,
        }
    }

    /// Every label of a language, concatenated (to check which font covers them).
    pub fn label_text(&self, language: Language) -> String {
        self.labels(language).to_string()
    }

    /// A statement label by dotted key (`statuses.HELD`); the key itself when missing.
    pub fn label(&self, language: Language, key: &str) -> String {
        let mut parts = key.split('.');
        let first = parts.next().unwrap_or_default();
        let mut value = self.labels(language).get(first);
        for part in parts {
            value = value.and_then(|v| v.get(part));
        }
        value
            .and_then(|v| v.as_str())
            .map_or_else(|| key.to_owned(), str::to_owned)
    }

    pub fn render_statement_html<S: Serialize>(
        &self,
        doc: &S,
        language: Language,
    ) -> Result<String, TemplateError> {
        let template =
            self.env
                .get_template("statement.html")
                .map_err(|source| TemplateError::Render {
                    name: "statement.html".into(),
                    source,
                })?;
        template
            .render(minijinja::context! { doc => doc, labels => self.labels(language) })
            .map_err(|source| TemplateError::Render {
                name: "statement.html".into(),
                source,
            })
    }

    /// Renders the `subject`, `text` and `html` blocks of `<kind>.<language>.j2`.
    pub fn render_email<S: Serialize>(
        &self,
        kind: &str,
        language: Language,
        context: &S,
    ) -> Result<EmailBody, TemplateError> {
        let name = format!("{kind}.{}.j2", language.code());
        let error = |source| TemplateError::Render {
            name: name.clone(),
            source,
        };
        let template = self.env.get_template(&name).map_err(error)?;
        let mut captured = template.render_captured(context).map_err(error)?;
        let subject = captured
            .with_state_mut(|state| state.render_block("subject"))
            .map_err(error)?
            .trim()
            .to_owned();
        let text = captured
            .with_state_mut(|state| state.render_block("text"))
            .map_err(error)?
            .trim_start()
            .to_owned();
        let html_template = self
            .env
            .get_template(&format!("{name}.html"))
            .map_err(error)?;
        let mut html_captured = html_template.render_captured(context).map_err(error)?;
        let html = html_captured
            .with_state_mut(|state| state.render_block("html"))
            .map_err(error)?
            .trim_start()
            .to_owned();
        Ok(EmailBody {
            subject,
            text,
            html,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value.as_table() {
                Some(inner) => keys(inner, &path, out),
                None => out.push(path),
            }
        }
    }

    #[test]
    fn the_issuer_settings_know_every_statement_language() {
        let codes: Vec<&str> = Language::ALL.iter().map(|l| l.code()).collect();
        assert_eq!(codes, crate::domain::statement::STATEMENT_LANGUAGES);
    }

    #[test]
    fn every_language_has_every_label_and_every_email() {
        let templates = Templates::load();
        let mut en = Vec::new();
        keys(&templates.labels_en, "", &mut en);
        en.sort();
        for &language in Language::ALL {
            let mut other = Vec::new();
            keys(templates.labels(language), "", &mut other);
            other.sort();
            assert_eq!(en, other, "labels.{}.toml", language.code());
            for kind in ["statement", "invitation", "migration"] {
                let name = format!("{kind}.{}.j2", language.code());
                assert!(
                    TEMPLATE_FILES.iter().any(|(file, _)| *file == name),
                    "email/{name} is missing"
                );
            }
        }
        for (country, code) in [
            ("KR", "ko"),
            ("JP", "ja"),
            ("DE", "de"),
            ("AT", "de"),
            ("CH", "de"),
            ("US", "en"),
            ("FR", "en"),
        ] {
            assert_eq!(Language::for_country(country).code(), code, "{country}");
        }
        assert_eq!(
            templates
                .label(Language::Ko, "statuses.HELD")
                .chars()
                .next(),
            Some('보')
        );
    }

    #[test]
    fn every_email_renders_in_every_language() {
        let templates = Templates::load();
        let context = serde_json::json!({
            "recipient_name": "Ada", "partner_name": "Fabrikam Müller GmbH", "partner_id": "1000002",
            "program_name": "CSP Indirect Provider Incentive", "period": "2026-10", "payable": "1.00 EUR",
            "carried": "0.00 EUR", "held": "0.00 EUR", "status_text": "x", "opens_on": "2026-11-02",
            "reminder": 1, "holds": [{"text": "t", "action": "a"}], "ineligible": [{"text": "t", "action": "a"}],
        });
        for &language in Language::ALL {
            for kind in ["statement", "invitation", "migration"] {
                let body = templates.render_email(kind, language, &context).unwrap();
                assert!(
                    !body.subject.is_empty()
                        && body.text.contains("1000002")
                        && body.html.contains("1000002"),
                    "{kind}.{}",
                    language.code()
                );
            }
        }
    }

    #[test]
    fn html_blocks_escape_and_text_blocks_do_not() {
        let templates = Templates::load();
        let context = minijinja::context! {
            partner_name => "A <b> & Co", partner_id => "1", program_name => "P", wave => "w", opens_on => "2026-01-01", reminder => 0,
        };
        let body = templates
            .render_email("migration", Language::En, &context)
            .unwrap();
        assert!(body.text.contains("A <b> & Co"));
        assert!(body.html.contains("A &lt;b&gt; &amp; Co"), "{}", body.html);
        assert_eq!(
            body.subject,
            "Your incentives are moving to self-service incentive management"
        );
    }
}

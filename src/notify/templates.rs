//! Templates of statements and emails (files under `src/notify/templates/`, compiled into the
//! binary so that it runs anywhere), and the per-language wording of statements.

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

/// The language of a partner's documents: Korean for partners in `KR`, English otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    En,
    Ko,
}

impl Language {
    pub fn for_country(country: &str) -> Self {
        if country == "KR" {
            Language::Ko
        } else {
            Language::En
        }
    }

    pub fn from_code(code: &str) -> Self {
        if code == "ko" {
            Language::Ko
        } else {
            Language::En
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ko => "ko",
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
];

const LABELS_EN: &str = include_str!("templates/labels.en.toml");
const LABELS_KO: &str = include_str!("templates/labels.ko.toml");

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
        }
    }

    fn labels(&self, language: Language) -> &toml::Table {
        match language {
            Language::En => &self.labels_en,
            Language::Ko => &self.labels_ko,
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
    fn both_languages_have_every_label() {
        let templates = Templates::load();
        let (mut en, mut ko) = (Vec::new(), Vec::new());
        keys(&templates.labels_en, "", &mut en);
        keys(&templates.labels_ko, "", &mut ko);
        en.sort();
        ko.sort();
        assert_eq!(en, ko);
        assert_eq!(
            templates
                .label(Language::Ko, "statuses.HELD")
                .chars()
                .next(),
            Some('보')
        );
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

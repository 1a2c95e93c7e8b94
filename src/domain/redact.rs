//! Masking of secrets in database and SMTP URLs, for anything printed or logged. It works on
//! the text, not on a parse: a URL that does not parse (`postgres://user:SEC#RET@host/db`) is
//! masked too, and where the text could be read two ways it masks more, never less. It must
//! never return any part of a password.

use std::ops::Range;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Query parameters whose value is a secret, compared case-insensitively after
/// percent-decoding (`password`, libpq's `sslpassword`, and the usual short forms).
const SECRET_QUERY_KEYS: [&str; 5] = ["password", "pass", "pwd", "passwd", "sslpassword"];

/// `url` with every password replaced by `***`: the password of the user-info part (from the
/// first `:` after the user name up to the last `@`, whether or not the URL parses) and the
/// value of every secret query parameter (up to the next `&`, as a driver reads it).
pub fn redact_url(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + "://".len());
    let mut secrets: Vec<Range<usize>> = secret_query_values(url, authority_start);
    secrets.extend(userinfo_password(url, authority_start));
    mask(url, secrets)
}

/// A URL's scheme only (`mysql`), for errors about URLs the engine does not take: their
/// layout is unknown, so nothing else of them is shown.
pub fn url_scheme(url: &str) -> &str {
    match url.split_once(':') {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            scheme
        }
        _ => "(not a URL)",
    }
}

/// Where the user-info password lies. A password written by hand may hold any character,
/// `@` included, so the user info ends at the *last* `@`: should the path or query hold one
/// too, more is masked than needed, never less.
fn userinfo_password(url: &str, authority_start: usize) -> Option<Range<usize>> {
    let rest = &url[authority_start..];
    let at = rest.rfind('@')?;
    // A user name alone is not a secret.
    let colon = rest[..at].find(':')?;
    Some(authority_start + colon + 1..authority_start + at)
}

/// Where the values of secret query parameters lie. Every `?` and `&` is taken as the start
/// of a parameter, even one inside what may be a password, so that a misplaced `?` cannot
/// hide the real query. A value ends at the next `&` only: not at `#`, which a driver would
/// cut off silently.
fn secret_query_values(url: &str, authority_start: usize) -> Vec<Range<usize>> {
    let mut values = Vec::new();
    for (separator, _) in url[authority_start..].match_indices(['?', '&']) {
        let key_start = authority_start + separator + 1;
        let Some(equals) = url[key_start..].find('=').map(|i| key_start + i) else {
            continue;
        };
        let key = &url[key_start..equals];
        if key.contains(['?', '&']) || !is_secret_key(key) {
            continue;
        }
        let value_start = equals + 1;
        let value_end = url[value_start..]
            .find('&')
            .map_or(url.len(), |i| value_start + i);
        values.push(value_start..value_end);
    }
    values
}

/// The keys of the secret query parameters of `url`, as written.
pub fn secret_query_keys(url: &str) -> Vec<&str> {
    let authority_start = url.find("://").map_or(0, |i| i + "://".len());
    secret_query_values(url, authority_start)
        .into_iter()
        .filter_map(|value| {
            let key_end = value.start - 1; // the `=`
            let key_start = url[..key_end].rfind(['?', '&'])? + 1;
            Some(&url[key_start..key_end])
        })
        .collect()
}

fn is_secret_key(key: &str) -> bool {
    url::form_urlencoded::parse(key.as_bytes())
        .next()
        .is_some_and(|(key, _)| {
            SECRET_QUERY_KEYS.contains(&key.trim().to_ascii_lowercase().as_str())
        })
}

/// `text` with each of `secrets` (byte ranges at ASCII separators) replaced by one `***`,
/// overlapping or touching ranges merged.
fn mask(text: &str, mut secrets: Vec<Range<usize>>) -> String {
    secrets.sort_by_key(|range| range.start);
    let mut masked = String::with_capacity(text.len());
    let mut shown_from = 0;
    let mut secrets = secrets.into_iter().peekable();
    while let Some(mut secret) = secrets.next() {
        while let Some(next) = secrets.next_if(|next| next.start <= secret.end) {
            secret.end = secret.end.max(next.end);
        }
        let start = secret.start.max(shown_from);
        masked.push_str(&text[shown_from..start]);
        masked.push_str(MASK);
        shown_from = secret.end.max(start);
    }
    masked.push_str(&text[shown_from..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_cases_of_issue_11_are_masked() {
        assert_eq!(
            redact_url("postgres://user:SEC#RET@host/db"),
            "postgres://user:***@host/db"
        );
        assert_eq!(
            redact_url("postgres://user@host/db?sslmode=disable&password=SECRET"),
            "postgres://user@host/db?sslmode=disable&password=***"
        );
        assert_eq!(
            redact_url("postgres://u:p@h/db?PassWord=x&pwd=y&sslpassword=z&application_name=a"),
            "postgres://u:***@h/db?PassWord=***&pwd=***&sslpassword=***&application_name=a"
        );
        assert_eq!(
            redact_url("smtps://mailer:S3cret@mail.example:465"),
            "smtps://mailer:***@mail.example:465"
        );
    }

    #[test]
    fn urls_without_secrets_are_kept_as_they_are() {
        for url in [
            "sqlite://payout.db",
            "sqlite:///var/lib/payout/payout.db?mode=rwc",
            "postgres://payout@db.internal:5432/payout",
            "postgres://db.internal/payout?sslmode=require",
            "smtp://127.0.0.1:2525",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn a_percent_encoded_key_is_still_a_secret_key() {
        assert_eq!(
            redact_url("postgres://h/db?pass%77ord=x"),
            "postgres://h/db?pass%77ord=***"
        );
    }

    #[test]
    fn secret_keys_are_found_as_written() {
        assert_eq!(
            secret_query_keys("postgres://h/db?password=a&PWD=b&sslmode=x&pass%77ord=c"),
            vec!["password", "PWD", "pass%77ord"]
        );
        assert!(secret_query_keys("postgres://u:p@h/db").is_empty());
    }

    #[test]
    fn only_the_scheme_of_an_unknown_url_is_shown() {
        assert_eq!(url_scheme("mysql://root:pw@h/db"), "mysql");
        assert_eq!(url_scheme("host=h password=pw"), "(not a URL)");
    }

    /// Any password: every printable character, `@ : / ? # & =` and non-ASCII included (but
    /// `*`, so that the mask cannot be mistaken for a piece of the password).
    fn password() -> impl Strategy<Value = String> {
        "\\PC{1,32}".prop_map(|secret| secret.replace('*', "#"))
    }

    fn percent_encoded(text: &str) -> String {
        url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
    }

    /// URL forms as (text before the password, text after it, expected redaction).
    const FORMS: [(&str, &str, &str); 9] = [
        (
            "postgres://payout:",
            "@db.example:5432/payout",
            "postgres://payout:***@db.example:5432/payout",
        ),
        (
            "postgresql://payout:",
            "@db.example/payout?sslmode=require",
            "postgresql://payout:***@db.example/payout?sslmode=require",
        ),
        (
            "postgres://payout@db.example/payout?password=",
            "",
            "postgres://payout@db.example/payout?password=***",
        ),
        (
            "postgres://db.example/payout?PASS=",
            "&sslmode=require",
            "postgres://db.example/payout?PASS=***&sslmode=require",
        ),
        (
            "postgres://payout@db.example/payout?application_name=x&pwd=",
            "",
            "postgres://payout@db.example/payout?application_name=x&pwd=***",
        ),
        (
            "postgres://payout@db.example/payout?sslpassword=",
            "&sslmode=verify-full",
            "postgres://payout@db.example/payout?sslpassword=***&sslmode=verify-full",
        ),
        (
            "smtp://mailer:",
            "@mail.example:587",
            "smtp://mailer:***@mail.example:587",
        ),
        (
            "smtps://mailer:",
            "@mail.example",
            "smtps://mailer:***@mail.example",
        ),
        (
            "sqlite://payout.db?passwd=",
            "",
            "sqlite://payout.db?passwd=***",
        ),
    ];

    /// Whether the password goes in the query (where a raw `&` would end it).
    fn in_query(before: &str) -> bool {
        before.ends_with('=')
    }

    proptest! {
        /// Nothing of the password is shown, whatever it holds and whether or not the URL
        /// parses: every piece of the redacted text outside `***` comes from the text around
        /// the password. Raw and percent-encoded.
        #[test]
        fn no_part_of_a_password_survives_redaction(secret in password()) {
            for (before, after, _) in FORMS {
                let raw = if in_query(before) { secret.replace('&', "") } else { secret.clone() };
                for inserted in [raw, percent_encoded(&secret)] {
                    if inserted.is_empty() {
                        continue;
                    }
                    let url = format!("{before}{inserted}{after}");
                    let redacted = redact_url(&url);
                    if !before.contains(&inserted) && !after.contains(&inserted) {
                        prop_assert!(!redacted.contains(&inserted), "{} -> {}", url, redacted);
                    }
                    for piece in redacted.split(MASK) {
                        prop_assert!(
                            before.contains(piece) || after.contains(piece),
                            "`{}` of {} is not from the URL around the password: {}", piece, url, redacted
                        );
                    }
                }
            }
        }

        /// A password without query separators is masked exactly: the rest of the URL stays.
        #[test]
        fn a_password_is_masked_exactly(secret in "[^?&*]{1,32}") {
            for (before, after, expected) in FORMS {
                for inserted in [secret.clone(), percent_encoded(&secret)] {
                    let url = format!("{before}{inserted}{after}");
                    prop_assert_eq!(redact_url(&url), expected, "from {}", url);
                }
            }
        }
    }
}

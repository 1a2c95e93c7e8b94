//! A real SMTP server for tests: `tests/smtp_sink.py` on aiosmtpd (Debian's python3-aiosmtpd),
//! started on a free loopback port, storing what it accepts as files.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpSink {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, &[], &[])
    }

    /// A sink with extra options of `tests/smtp_sink.py` (`--tls-cert`, `--auth-user`, …) and
    /// environment variables (`SINK_AUTH_PASSWORD`).
    pub fn start_with(port: u16, options: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .args(options)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "SMTP sink did not start");
        Self { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops the server as a crash would (the messages it accepted stay readable).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every message received so far, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a header (first occurrence), unfolded.
pub fn header(message: &str, name: &str) -> Option<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut lines = message.lines().peekable();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            return None;
        }
        if line.to_ascii_lowercase().starts_with(&prefix) {
            let mut value = line[prefix.len()..].trim().to_owned();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(next.trim());
                lines.next();
            }
            return Some(value);
        }
    }
    None
}

/// The PDF attachment of a received message: its file name and its decoded bytes.
pub fn pdf_attachment(message: &str) -> Option<(String, Vec<u8>)> {
    let lines: Vec<&str> = message.lines().collect();
    let start = lines.iter().position(|l| {
        l.to_ascii_lowercase()
            .starts_with("content-type: application/pdf")
    })?;
    let mut name = None;
    // The part's headers: from its boundary line to the blank line.
    let mut at = lines[..start]
        .iter()
        .rposition(|l| l.starts_with("--"))
        .map_or(start, |boundary| boundary + 1);
    while at < lines.len() && !lines[at].is_empty() {
        let line = lines[at];
        if let Some(i) = line.find("filename=") {
            name = Some(line[i + "filename=".len()..].trim_matches('"').to_owned());
        }
        at += 1;
    }
    let mut text = String::new();
    for line in &lines[at + 1..] {
        if line.starts_with("--") {
            break;
        }
        text.push_str(line.trim());
    }
    Some((name?, base64_decode(&text)?))
}

/// Standard base64 (with padding), as a MIME body is encoded.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for &c in bytes {
        buffer = (buffer << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

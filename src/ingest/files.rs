//! The files of `revenue/` (SPEC §2, §7.16): which entries are revenue files, in which order,
//! their SHA-256 (the key of exactly-once ingest) and whether a CSV file is plain (no quote,
//! no lone carriage return), found in the same read. Looks at metadata before opening
//! anything, so it never opens a FIFO or a device; it never reads rows.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use memchr::memchr2_iter;
use sha2::{Digest, Sha256};

use super::warning::Warnings;

/// A file found in `revenue/`.
#[derive(Debug, Clone)]
pub struct RevenueFile {
    /// `revenue/<file name>`, as reports write it (SPEC §7.3).
    pub source_file: String,
    pub path: PathBuf,
    pub sha256: String,
    /// Whether it is plain CSV (`is_plain_csv`), when hashing found out already.
    pub plain: Option<bool>,
}

/// Files in `data_dir/revenue`, in file-name order (SPEC §7.16), with their content hashes,
/// and the entries skipped as not revenue files (see `list_revenue_files_unhashed`).
pub fn list_revenue_files(data_dir: &Path) -> std::io::Result<(Vec<RevenueFile>, Warnings)> {
    let (mut files, skipped) = list_revenue_files_unhashed(data_dir)?;
    for file in &mut files {
        let (sha256, plain) = hash_file(&file.path)?;
        file.sha256 = sha256;
        file.plain = Some(plain);
    }
    Ok((files, skipped))
}

/// `list_revenue_files` without the hashes (empty), for reading files without storing them.
/// Revenue files are the regular files directly in `revenue/`, or symbolic links to regular
/// files inside the data directory. Everything else is skipped with a warning: hidden entries,
/// folders, FIFOs, sockets and devices (never opened: reading a FIFO would block the run),
/// dangling links and links that resolve outside the data directory.
pub fn list_revenue_files_unhashed(
    data_dir: &Path,
) -> std::io::Result<(Vec<RevenueFile>, Warnings)> {
    let dir = data_dir.join("revenue");
    let mut skipped = Warnings::default();
    if !dir.exists() {
        return Ok((Vec::new(), skipped));
    }
    let root = std::fs::canonicalize(data_dir)?;
    let mut entries = std::fs::read_dir(&dir)?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    let mut files = Vec::new();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let source_file = format!("revenue/{name}");
        let path = entry.path();
        match revenue_entry_problem(&name, &entry.file_type()?, &path, &root) {
            Some(problem) => skipped.push(&source_file, None, format!("{problem}; skipped")),
            None => files.push(RevenueFile {
                source_file,
                path,
                sha256: String::new(),
                plain: None,
            }),
        }
    }
    files.sort_by(|a, b| a.source_file.cmp(&b.source_file));
    Ok((files, skipped))
}

/// Why an entry of `revenue/` is not a revenue file, or `None` when it is one. Looks only at
/// metadata (lstat, stat, realpath): nothing is opened.
fn revenue_entry_problem(
    name: &str,
    kind: &std::fs::FileType,
    path: &Path,
    root: &Path,
) -> Option<String> {
    if name.starts_with('.') {
        return Some("hidden entry".to_owned());
    }
    if kind.is_file() {
        return None;
    }
    if !kind.is_symlink() {
        return Some(not_a_file(kind));
    }
    let target = match std::fs::canonicalize(path) {
        Ok(target) => target,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some("symbolic link to a missing file".to_owned());
        }
        Err(e) => return Some(format!("symbolic link that cannot be followed ({e})")),
    };
    if !target.starts_with(root) {
        return Some("symbolic link to a file outside the data directory".to_owned());
    }
    match std::fs::metadata(&target) {
        Ok(meta) if meta.is_file() => None,
        Ok(meta) => Some(format!(
            "symbolic link to a {}",
            not_a_file(&meta.file_type())
        )),
        Err(e) => Some(format!("symbolic link that cannot be followed ({e})")),
    }
}

/// What a non-file entry is, for its warning.
fn not_a_file(kind: &std::fs::FileType) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let special = if kind.is_fifo() {
            Some("FIFO")
        } else if kind.is_socket() {
            Some("socket")
        } else if kind.is_block_device() || kind.is_char_device() {
            Some("device")
        } else {
            None
        };
        if let Some(special) = special {
            return format!("{special}, not a regular file");
        }
    }
    if kind.is_dir() {
        "folder (revenue files are read from revenue/ itself, not its subfolders)".to_owned()
    } else {
        "not a regular file".to_owned()
    }
}

/// The file's SHA-256, and whether it is plain CSV, in one read.
fn hash_file(path: &Path) -> std::io::Result<(String, bool)> {
    let mut hasher = Sha256::new();
    let mut scan = PlainScan::default();
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        scan.feed(&buffer[..n]);
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((sha256, scan.is_plain()))
}

/// Whether a CSV file can be split on commas and newlines alone: no quote anywhere and no
/// carriage return except before a newline.
pub fn is_plain_csv(path: &Path) -> std::io::Result<bool> {
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 1 << 22];
    let mut scan = PlainScan::default();
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(scan.is_plain());
        }
        scan.feed(&buffer[..n]);
        if scan.quoted {
            return Ok(false);
        }
    }
}

/// `is_plain_csv` fed chunk by chunk, so that a pass that reads the file anyway (hashing it)
/// can tell at no extra read.
#[derive(Debug, Default)]
pub struct PlainScan {
    quoted: bool,
    /// The last chunk ended in a carriage return: plain only if the next starts a line end.
    carry_cr: bool,
}

impl PlainScan {
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.quoted || chunk.is_empty() {
            return;
        }
        if self.carry_cr && chunk[0] != b'\n' {
            self.quoted = true;
            return;
        }
        self.carry_cr = false;
        for at in memchr2_iter(b'"', b'\r', chunk) {
            if chunk[at] == b'"' {
                self.quoted = true;
                return;
            }
            match chunk.get(at + 1) {
                Some(b'\n') => {}
                Some(_) => {
                    self.quoted = true;
                    return;
                }
                None => self.carry_cr = true,
            }
        }
    }

    pub fn is_plain(&self) -> bool {
        !self.quoted && !self.carry_cr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn only_files_and_links_to_files_inside_the_data_dir_are_revenue_files() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let revenue = data.join("revenue");
        std::fs::create_dir_all(revenue.join("2026-10")).unwrap();
        std::fs::write(revenue.join("a.csv"), "x").unwrap();
        std::fs::write(revenue.join(".hidden.csv"), "x").unwrap();
        std::fs::write(data.join("kept.csv"), "x").unwrap();
        std::fs::write(root.path().join("outside.csv"), "x").unwrap();
        std::os::unix::fs::symlink(data.join("kept.csv"), revenue.join("b-link.csv")).unwrap();
        std::os::unix::fs::symlink(root.path().join("outside.csv"), revenue.join("c-out.csv"))
            .unwrap();
        std::os::unix::fs::symlink(data.join("gone.csv"), revenue.join("d-dangling.csv")).unwrap();
        let fifo = revenue.join("e-fifo.csv");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        std::os::unix::fs::symlink(&fifo, revenue.join("f-fifo-link.csv")).unwrap();

        // Returns at all: the FIFO is never opened (opening it would block).
        let (files, skipped) = list_revenue_files(&data).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.source_file.as_str()).collect();
        assert_eq!(names, ["revenue/a.csv", "revenue/b-link.csv"]);
        let warnings: Vec<String> = skipped.listed().iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warnings,
            [
                "revenue/.hidden.csv: hidden entry; skipped",
                "revenue/2026-10: folder (revenue files are read from revenue/ itself, not its subfolders); skipped",
                "revenue/c-out.csv: symbolic link to a file outside the data directory; skipped",
                "revenue/d-dangling.csv: symbolic link to a missing file; skipped",
                "revenue/e-fifo.csv: FIFO, not a regular file; skipped",
                "revenue/f-fifo-link.csv: symbolic link to a FIFO, not a regular file; skipped",
            ]
        );
    }

    #[test]
    fn quotes_and_lone_carriage_returns_are_not_plain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        for (text, plain) in [
            ("a,b\r\n1,2\r\n", true),
            ("a,b\n1,2", true),
            ("a,b\n\"1\",2\n", false),
            ("a,b\r1,2\n", false),
            ("a,b\n1,2\r", false),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(is_plain_csv(&path).unwrap(), plain, "{text:?}");
            // Fed a byte at a time, as hashing feeds its chunks: the same answer.
            let mut scan = PlainScan::default();
            for byte in text.as_bytes() {
                scan.feed(std::slice::from_ref(byte));
            }
            assert_eq!(scan.is_plain(), plain, "{text:?} byte by byte");
        }
    }
}

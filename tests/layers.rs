//! The layers of the crate (STYLE.md, README "How it is built"), checked on the source: each
//! top-level module imports only the layers below it, and no two modules import each other,
//! directly or around a cycle. A `use crate::…` (or a `crate::…` path anywhere in the code) is
//! an import of that path's first module.
//!
//! `NOT_YET_LAYERED` and `NOT_YET_ACYCLIC` list imports that break the layering while a move
//! is under way (both are empty now): the tests fail on any import not listed, and on a listed
//! one that is gone, so that the lists only shrink.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module -> the top-level modules it may import. Modules not listed are the
/// orchestration (commands, runs, the scheduler, campaigns, settings, cli) and may import any
/// module, as long as no cycle forms.
const RULES: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("eligibility", &["domain"]),
    ("ledger", &["domain"]),
    ("earnings", &["domain", "eligibility", "ledger"]),
    ("ingest", &["domain", "eligibility", "earnings", "ledger"]),
    ("store", &["domain"]),
];

/// Imports that still break the rules, each as (module, imported module). Remove a line when
/// the import is gone; never add one.
const NOT_YET_LAYERED: &[(&str, &str)] = &[];

/// Import cycles between top-level modules that are still there, written from the
/// alphabetically first module of the cycle.
const NOT_YET_ACYCLIC: &[&str] = &[];

/// Modules that must never import the store: they take data, the orchestration passes it in.
const NEVER_STORE: &[&str] = &[
    "reports",
    "notify",
    "domain",
    "eligibility",
    "earnings",
    "ledger",
    "ingest",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`None`: the crate root, `main`, binaries).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (!matches!(name.as_str(), "lib" | "main" | "bin")).then_some(name)
}

/// Top-level modules named by `crate::` paths in the code (comments left out).
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue; // `$crate::`, `mycrate::`
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
        // `use crate::{a::X, b::Y}`
        if let Some(at) = code.find("crate::{") {
            let group = &code[at + "crate::{".len()..];
            for part in group.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for target in imports(&text) {
            if target != module {
                let shown = file.strip_prefix(&src).unwrap().display().to_string();
                edges.entry(target).or_default().push(shown);
            }
        }
    }
    graph
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let graph = graph();
    let mut broken = BTreeMap::new();
    for (module, allowed) in RULES {
        for (target, files) in graph.get(*module).into_iter().flatten() {
            if !allowed.contains(&target.as_str()) {
                broken.insert((module.to_string(), target.clone()), files.join(", "));
            }
        }
    }
    for module in NEVER_STORE {
        if let Some(files) = graph.get(*module).and_then(|edges| edges.get("store")) {
            broken.insert((module.to_string(), "store".to_owned()), files.join(", "));
        }
    }
    let known: BTreeSet<(String, String)> = NOT_YET_LAYERED
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<String> = broken
        .iter()
        .filter(|(pair, _)| !known.contains(*pair))
        .map(|((module, target), files)| format!("{module} imports {target} ({files})"))
        .collect();
    assert!(new.is_empty(), "layering broken:\n{}", new.join("\n"));
    let gone: Vec<_> = known
        .iter()
        .filter(|pair| !broken.contains_key(*pair))
        .collect();
    assert!(
        gone.is_empty(),
        "fixed, remove from NOT_YET_LAYERED: {gone:?}"
    );
}

#[test]
fn no_two_top_level_modules_import_each_other_around_a_cycle() {
    let graph = graph();
    // Depth-first search with colours: a grey node met again closes a cycle.
    fn visit<'g>(
        node: &'g str,
        graph: &'g BTreeMap<String, BTreeMap<String, Vec<String>>>,
        state: &mut BTreeMap<&'g str, bool>,
        path: &mut Vec<&'g str>,
        cycles: &mut Vec<String>,
    ) {
        match state.get(node) {
            Some(true) => {
                let start = path.iter().position(|n| *n == node).unwrap();
                cycles.push(format!("{} -> {node}", path[start..].join(" -> ")));
                return;
            }
            Some(false) => return,
            None => {}
        }
        state.insert(node, true);
        path.push(node);
        for target in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            visit(target, graph, state, path, cycles);
        }
        path.pop();
        state.insert(node, false);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for node in graph.keys() {
        visit(node, &graph, &mut state, &mut Vec::new(), &mut cycles);
    }
    cycles.sort();
    assert_eq!(
        cycles, NOT_YET_ACYCLIC,
        "import cycles changed (new ones are not allowed)"
    );
}

#[test]
fn no_source_file_is_longer_than_600_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let long: Vec<String> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, lines)| *lines > MAX_FILE_LINES)
        .map(|(f, lines)| format!("{} ({lines} lines)", f.display()))
        .collect();
    assert!(long.is_empty(), "split these along their jobs: {long:?}");
}

/// A file longer than this does several jobs (issue 12).
const MAX_FILE_LINES: usize = 600;

#[test]
fn the_import_parser_sees_grouped_and_inline_paths() {
    let text = "use crate::domain::money::Money;\nuse crate::{ingest::MasterData, ledger};\nlet x = crate::store::now();\n// crate::notify in a comment\nmacro_rules! m { () => { $crate::x } }";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["domain", "ingest", "ledger", "store"]);
}

/// Rounding lives in `domain/money.rs` alone (issue 12): no other source file calls a rounding
/// function of `rust_decimal` or the crate's own half-even division (money is never a float,
/// so a `{:.1}` of a duration is not rounding money); other modules reach it only through
/// `Money::round_to_minor` and `Money::round_exact_text`. Test modules (`tests.rs`, the
/// reference model of the property tests) and the test-data generator are left out.
#[test]
fn only_domain_money_rounds() {
    const ROUNDING: [&str; 10] = [
        "div_half_even",
        "round_dp",
        "RoundingStrategy",
        ".round()",
        "round_sf",
        "rescale(",
        ".trunc(",
        "trunc_with_scale",
        ".floor()",
        ".ceil()",
    ];
    fn rounding_lines(text: &str) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ROUNDING.iter().any(|call| code.contains(call)) {
                found.push((number + 1, line.trim().to_owned()));
            }
        }
        found
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 50,
        "the scan found only {} files",
        files.len()
    );
    let mut outside = Vec::new();
    let mut inside = 0;
    for file in files {
        let shown = file.strip_prefix(&src).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let found = rounding_lines(&text);
        if shown == "domain/money.rs" {
            inside += found.len();
        } else if file.file_name().is_some_and(|n| n == "tests.rs") || shown.starts_with("bin/") {
            continue;
        } else {
            outside.extend(
                found
                    .into_iter()
                    .map(|(n, line)| format!("{shown}:{n}: {line}")),
            );
        }
    }
    assert!(
        outside.is_empty(),
        "rounding outside domain/money.rs:\n{}",
        outside.join("\n")
    );
    // The same scan sees the rounding that is there.
    assert!(inside > 0, "the scan found no rounding in domain/money.rs");
}

//! The layers of the host, checked: every `crate::MODULE` reference in
//! host/src goes outward-in (frontends -> runner -> engine -> capabilities
//! -> gate -> audit -> policy/journal -> backends), never back, so there is
//! no cycle between layers. A new top-level module must be placed in
//! [`LAYERS`] before it builds green. Needs no root: `cargo test --test layers`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Outermost first. A module may use modules of later rows (and itself);
/// the last row (shared values and helpers) may be used by all.
const LAYERS: &[&[&str]] = &[
    // The binary's entry: parses the command line, dispatches to the frontends.
    &["cli"],
    // What the command line shows and reads without running anything.
    &["inventory"],
    // Frontends: build runs and hand them to the runner.
    &["daemon", "lifecycle", "docker_plugin"],
    // What frontends share: system options, fetching scripts (files, OCI registries), vetting them.
    &["config", "registry"],
    &["vetting"],
    &["runner"],
    &["engine"],
    &["capabilities"],
    &["gate"],
    &["audit"],
    &["policy", "journal"],
    &["backend"],
    &["types", "tunnel", "error", "verbose", "rundir", "progress"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of host/src belongs to (`backend/ovsdb/mod.rs` -> backend).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
    first.trim_end_matches(".rs").to_string()
}

/// `crate::NAME` references outside comments.
fn references(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            // `crate::{a, b}` groups are not used in this tree; a name is required.
            if !name.is_empty() {
                out.push((n + 1, name));
            }
            rest = after;
        }
    }
    out
}

#[test]
fn dependencies_between_layers_go_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut unplaced = BTreeMap::new();
    for f in &files {
        let from = module_of(&src, f);
        if matches!(from.as_str(), "lib" | "main") {
            continue;
        }
        let Some(from_rank) = rank(&from) else {
            unplaced.insert(from.clone(), f.display().to_string());
            continue;
        };
        let text = fs::read_to_string(f).unwrap();
        for (line, to) in references(&text) {
            if to == from {
                continue;
            }
            let Some(to_rank) = rank(&to) else {
                unplaced.insert(to.clone(), format!("{}:{line}", f.display()));
                continue;
            };
            let shared = to_rank == LAYERS.len() - 1;
            if !(to_rank > from_rank || shared && from_rank == to_rank) {
                violations.push(format!("{}:{line}: {from} uses {to}, a layer above it", f.display()));
            }
        }
    }
    assert!(unplaced.is_empty(), "modules not in the layer table of tests/layers.rs: {unplaced:#?}");
    assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_a_violation() {
    // The check itself must be able to fail: a backend naming the gate is caught.
    let refs = references("use crate::gate::Gate; // crate::cli in a comment is ignored");
    assert_eq!(refs, vec![(1, "gate".to_string())]);
    assert!(rank("gate").unwrap() < rank("backend").unwrap());
}

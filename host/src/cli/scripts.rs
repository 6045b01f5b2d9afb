//! Installed scripts, found by name: `ovs-run attach br0 eth0 web` runs
//! `attach.wasm` from the first directory of the search path that has it,
//! and `ovs-run scripts` lists what the path offers.
//!
//! The search path, first match wins:
//! 1. the directory installed beside the binary (`BIN/../share/ovs-run/scripts`,
//!    which is `$PREFIX/share/ovs-run/scripts` after `make install`),
//! 2. `/usr/local/share/ovs-run/scripts`, then `/usr/share/ovs-run/scripts`,
//! 3. the directories of `$OVS_RUN_PATH` (colon separated), in order.
//!
//! Installed directories come first so that an environment variable cannot
//! put another `attach` in place of the one root installed. A word with a
//! slash or ending in `.wasm` is a path and never looked up.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::table;
use super::EXIT_USAGE;
use crate::vetting::{self, metadata};

/// The environment variable naming more script directories.
pub const PATH_VAR: &str = "OVS_RUN_PATH";

/// The directories searched, in order, each once (missing ones included:
/// `scripts` says which it looked at).
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(share) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.canonicalize().ok())
        .and_then(|exe| Some(exe.parent()?.parent()?.join("share/ovs-run/scripts")))
    {
        dirs.push(share);
    }
    dirs.push("/usr/local/share/ovs-run/scripts".into());
    dirs.push("/usr/share/ovs-run/scripts".into());
    if let Some(extra) = std::env::var_os(PATH_VAR) {
        dirs.extend(std::env::split_paths(&extra).filter(|d| !d.as_os_str().is_empty()));
    }
    let mut seen = Vec::new();
    dirs.retain(|d| {
        let key = d.canonicalize().unwrap_or_else(|_| d.clone());
        let fresh = !seen.contains(&key);
        seen.push(key);
        fresh
    });
    dirs
}

/// Whether `word` is a path to a script rather than a name: it has a slash,
/// or ends in `.wasm` (before any `@sha256:` pin).
pub fn is_path(word: &str) -> bool {
    let file = word.split_once("@sha256:").map_or(word, |(f, _)| f);
    file.contains('/') || file.ends_with(".wasm")
}

/// A valid script name: what a file `NAME.wasm` in a script directory is called.
fn is_name(word: &str) -> bool {
    !word.is_empty()
        && !word.starts_with('.')
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The file for script `name` (optionally pinned: `NAME@sha256:HEX`, kept
/// on the result), from the first directory of `dirs` that has it.
pub fn resolve(name: &str, dirs: &[PathBuf]) -> Option<String> {
    let (bare, pin) = match name.split_once("@sha256:") {
        Some((b, p)) => (b, Some(p)),
        None => (name, None),
    };
    if !is_name(bare) {
        return None;
    }
    let file = dirs.iter().map(|d| d.join(format!("{bare}.wasm"))).find(|f| f.is_file())?;
    let file = file.to_string_lossy().into_owned();
    Some(match pin {
        Some(p) => format!("{file}@sha256:{p}"),
        None => file,
    })
}

/// One installed script, as `scripts` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Installed {
    pub name: String,
    pub path: PathBuf,
    pub version: Option<String>,
    pub description: Option<String>,
    /// Why the metadata could not be read (the file is still listed).
    pub error: Option<String>,
}

/// Every script of the search path by name: the first of each name (the one
/// `ovs-run NAME` runs), sorted.
pub fn installed(dirs: &[PathBuf]) -> Vec<Installed> {
    let mut out: Vec<Installed> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for path in files {
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".wasm"))
            else {
                continue;
            };
            if !is_name(name) || !path.is_file() || out.iter().any(|s| s.name == name) {
                continue;
            }
            out.push(describe(name, &path));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn describe(name: &str, path: &Path) -> Installed {
    let meta = vetting::read_script_file(path).and_then(|b| metadata::read(&b));
    let (m, error) = match meta {
        Ok(m) => (m, None),
        Err(e) => (Default::default(), Some(e)),
    };
    Installed {
        name: name.to_string(),
        path: path.to_path_buf(),
        version: m.version,
        description: m.description.map(|d| vetting::inspect::clean(&d, false)),
        error,
    }
}

/// `ovs-run scripts`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Scripts are found by name in, first match wins: the share/ovs-run/scripts
directory installed beside the binary, /usr/local/share/ovs-run/scripts,
/usr/share/ovs-run/scripts, then each directory of $OVS_RUN_PATH (colon
separated). `ovs-run NAME ARGS...` runs NAME.wasm from there; a SCRIPT with a
slash or ending in .wasm (./my.wasm, scripts/attach.wasm) is a file.")]
pub struct ScriptsArgs {
    /// Print the scripts as a JSON array (with their paths)
    #[arg(long)]
    pub json: bool,
}

pub(super) fn list(args: ScriptsArgs) -> i32 {
    let dirs = search_path();
    let all = installed(&dirs);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return 0;
    }
    let searched: Vec<String> = dirs
        .iter()
        .map(|d| format!("{}{}", d.display(), if d.is_dir() { "" } else { " (missing)" }))
        .collect();
    if all.is_empty() {
        eprintln!("ovs-run: no scripts installed; searched {}", searched.join(", "));
        return 0;
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            let desc = match (&s.description, &s.error) {
                (_, Some(e)) => format!("(unreadable: {e})"),
                (Some(d), None) => d.clone(),
                (None, None) => "-".into(),
            };
            vec![
                s.name.clone(),
                s.version.clone().unwrap_or_else(|| "-".into()),
                desc,
                s.path.display().to_string(),
            ]
        })
        .collect();
    for l in table::render(&["NAME", "VERSION", "DESCRIPTION", "PATH"], &rows) {
        println!("{l}");
    }
    0
}

/// The message for a word that is neither a subcommand nor a script.
pub fn unknown(word: &str, subcommands: &[String], dirs: &[PathBuf]) -> i32 {
    let scripts: Vec<String> = installed(dirs).into_iter().map(|s| s.name).collect();
    let candidates = subcommands.iter().chain(&scripts);
    let best = candidates
        .map(|c| (osa_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d);
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    eprintln!(
        "ovs-run: '{}' is neither a subcommand nor an installed script (looked for {}.wasm in {})",
        crate::types::shorten(word),
        crate::types::shorten(word),
        shown.join(":")
    );
    if let Some((_, c)) = best {
        eprintln!("  did you mean {c}?");
    }
    if Path::new(word).is_file() {
        eprintln!("  to run the file {word} in this directory, write ./{word}");
    }
    eprintln!("  see `ovs-run --help` for subcommands, `ovs-run scripts` for scripts");
    EXIT_USAGE
}

/// Optimal string alignment distance: edits, with a swap of two neighbours
/// counting as one ("inpsect" is one from "inspect").
fn osa_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_names() {
        for p in ["./x.wasm", "scripts/attach.wasm", "attach.wasm", "a/b", "x.wasm@sha256:00"] {
            assert!(is_path(p), "{p}");
        }
        for n in ["attach", "seed-demo", "attach@sha256:00"] {
            assert!(!is_path(n), "{n}");
        }
        assert!(!is_name("../x") && !is_name(".hidden") && !is_name(""));
    }

    #[test]
    fn resolves_through_the_path_in_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(b.path().join("attach.wasm"), b"x").unwrap();
        std::fs::write(b.path().join("only-b.wasm"), b"x").unwrap();
        std::fs::write(a.path().join("attach.wasm"), b"x").unwrap();
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        let got = resolve("attach", &dirs).unwrap();
        assert_eq!(got, a.path().join("attach.wasm").to_string_lossy());
        assert!(resolve("only-b", &dirs).unwrap().starts_with(&*b.path().to_string_lossy()));
        assert!(resolve("attach@sha256:ab", &dirs).unwrap().ends_with("attach.wasm@sha256:ab"));
        assert_eq!(resolve("nosuch", &dirs), None);
        let names: Vec<String> = installed(&dirs).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["attach", "only-b"]);
    }

    #[test]
    fn typos_are_close() {
        assert_eq!(osa_distance("inpsect", "inspect"), 1);
        assert_eq!(osa_distance("atach", "attach"), 1);
        assert_eq!(osa_distance("gc", "ps"), 2);
        assert_eq!(osa_distance("", "ab"), 2);
    }
}

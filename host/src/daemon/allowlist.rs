//! `serve --allow-digests FILE`: the scripts tenants may submit, by the
//! sha256 of their bytes. The file holds one digest a line, as `HEX`,
//! `sha256:HEX` or `sha256sum`'s `HEX  NAME`; `#` starts a comment. It is
//! read once, at start-up: a file that cannot be read, or a line that is
//! not a digest, stops the daemon there rather than refusing at run time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub struct AllowList {
    file: PathBuf,
    digests: BTreeSet<String>,
}

impl AllowList {
    pub fn load(file: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let digests = parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(Self { file: file.to_path_buf(), digests })
    }

    /// Whether `sha` (lowercase hex) is listed.
    pub fn allows(&self, sha: &str) -> bool {
        self.digests.contains(sha)
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn file(&self) -> &Path {
        &self.file
    }
}

fn parse(text: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(word) = line.split_whitespace().next() else { continue };
        let hex = word.strip_prefix("sha256:").unwrap_or(word).to_ascii_lowercase();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "line {}: '{}' is not a sha256 digest (64 hex digits, optionally sha256:)",
                n + 1,
                ovs_run_types::shorten(word)
            ));
        }
        out.insert(hex);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bare_prefixed_and_sha256sum_lines() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let c = "0123456789abcdef".repeat(4);
        let text = format!("# vetted\n{a}\n\nsha256:{b}  # attach 0.1\n{c}  scripts/attach.wasm\n");
        let got = parse(&text).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.contains(&a) && got.contains(&"b".repeat(64)) && got.contains(&c));
        let e = parse("abc\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("'abc'"), "{e}");
    }
}

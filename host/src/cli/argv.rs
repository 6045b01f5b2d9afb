//! The command line before clap sees it. Scripts and subcommands share the
//! first word, so it is decided here which one the user meant:
//!
//! - a subcommand (or its alias): the options written before it
//!   (`ovs-run --cache-dir X inspect ...`) are moved after it, where clap
//!   reads them as the subcommand's own; one that the subcommand does not
//!   take is dropped if it only says where things are or how much to print
//!   (`--cache-dir` means nothing to `inspect`), and refused otherwise: a
//!   `--dry-run` that `bind` does not have must not be silently ignored;
//! - a word with a slash or ending in `.wasm`: a script file, as always;
//! - any other word: an installed script's name, replaced by its file (see
//!   [`super::scripts`]); when there is none, the closest subcommand or
//!   script is suggested instead of "cannot read script inpsect".
//!
//! clap's `args_conflicts_with_subcommands` would otherwise take any word
//! after a top-level option as SCRIPT.

use std::ffi::OsString;

use clap::{Command, CommandFactory};

use super::scripts;
use super::{Cli, EXIT_USAGE};

/// Options that, before a subcommand that does not take them, are dropped
/// rather than refused: they change where ovs-run looks or how much it
/// prints, never what it does.
const IGNORABLE: &[&str] = &[
    "cache-dir",
    "no-cache",
    "journal-dir",
    "ovsdb",
    "docker",
    "apply-timeout",
    "datapath",
    "verbose",
    "quiet",
];

/// `word` names a subcommand of `cmd` (name or alias; `help` too).
pub fn is_subcommand(cmd: &Command, word: &str) -> bool {
    word == "help" && !cmd.is_disable_help_subcommand_set() || find_subcommand(cmd, word).is_some()
}

fn find_subcommand<'a>(cmd: &'a Command, word: &str) -> Option<&'a Command> {
    cmd.get_subcommands().find(|c| c.get_name() == word || c.get_all_aliases().any(|a| a == word))
}

/// Whether `arg` (long `--name`, or a cluster of short flags `-vv`) takes a
/// value, for the options of `cmd`.
fn takes_value(cmd: &Command, word: &str) -> bool {
    if word.contains('=') {
        return false;
    }
    cmd.get_arguments().any(|a| {
        a.get_action().takes_values()
            && (a.get_long().is_some_and(|l| word == format!("--{l}"))
                || a.get_short().is_some_and(|c| word == format!("-{c}")))
    })
}

/// The long name of option `word` in `top` ("verbose" for "-vv"), if it is one.
fn long_name(top: &Command, word: &str) -> Option<String> {
    if let Some(l) = word.strip_prefix("--") {
        return Some(l.split_once('=').map_or(l, |(n, _)| n).to_string());
    }
    let c = word.strip_prefix('-')?.chars().next()?;
    top.get_arguments().find(|a| a.get_short() == Some(c)).and_then(|a| a.get_long()).map(str::to_string)
}

/// Whether `leaf` has an option called `long` (or the same short flag as `word`).
fn accepts(leaf: &Command, long: &str, word: &str) -> bool {
    let short = word.strip_prefix('-').filter(|w| !w.starts_with('-')).and_then(|w| w.chars().next());
    leaf.get_arguments().any(|a| {
        a.get_long() == Some(long)
            || a.get_all_aliases().is_some_and(|al| al.contains(&long))
            || short.is_some_and(|s| a.get_short() == Some(s))
    })
}

/// Rewrite `argv` as described in the module doc; Err is the exit status
/// (the message is printed).
pub fn prepare(argv: Vec<OsString>) -> Result<Vec<OsString>, i32> {
    let top = Cli::command();
    // The leading options, as [start, end) spans of argv.
    let mut spans = Vec::new();
    let mut i = 1;
    let first = loop {
        let Some(word) = argv.get(i).and_then(|w| w.to_str()) else { return Ok(argv) };
        if word == "--" || word == "-" {
            return Ok(argv);
        }
        if !word.starts_with('-') {
            break i;
        }
        let n = if takes_value(&top, word) { 2 } else { 1 };
        spans.push((i, (i + n).min(argv.len())));
        i += n;
    };
    let word = argv[first].to_str().unwrap_or_default().to_string();

    if is_subcommand(&top, &word) {
        if spans.is_empty() || word == "help" {
            return Ok(argv);
        }
        // The subcommand that takes the options: the deepest named one (`key list`).
        let mut leaf = find_subcommand(&top, &word).expect("checked");
        let mut at = first + 1;
        while let Some(next) = argv.get(at).and_then(|w| w.to_str()).and_then(|w| find_subcommand(leaf, w)) {
            leaf = next;
            at += 1;
        }
        let mut moved = Vec::new();
        for &(s, e) in &spans {
            let opt = argv[s].to_str().unwrap_or_default();
            let long = long_name(&top, opt).unwrap_or_default();
            if accepts(leaf, &long, opt) {
                moved.extend(argv[s..e].iter().cloned());
            } else if !IGNORABLE.contains(&long.as_str()) {
                eprintln!(
                    "ovs-run: {opt} does not apply to `{}`: see `ovs-run {} --help`",
                    leaf.get_name(),
                    word
                );
                return Err(EXIT_USAGE);
            }
        }
        let mut out = vec![argv[0].clone()];
        out.extend(argv[first..at].iter().cloned());
        out.extend(moved);
        out.extend(argv[at..].iter().cloned());
        return Ok(out);
    }
    if scripts::is_path(&word) {
        return Ok(argv);
    }
    let dirs = scripts::search_path();
    match scripts::resolve(&word, &dirs) {
        Some(file) => {
            let mut out = argv;
            out[first] = file.into();
            Ok(out)
        }
        None => {
            let names: Vec<String> = top
                .get_subcommands()
                .filter(|c| !c.is_hide_set())
                .flat_map(|c| {
                    std::iter::once(c.get_name().to_string()).chain(c.get_all_aliases().map(str::to_string))
                })
                .collect();
            Err(scripts::unknown(&word, &names, &dirs))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prepare;

    fn words(s: &str) -> Result<Vec<String>, i32> {
        let argv = s.split(' ').map(std::ffi::OsString::from).collect();
        prepare(argv).map(|v| v.into_iter().map(|w| w.into_string().unwrap()).collect())
    }

    #[test]
    fn options_before_a_subcommand_move_after_it() {
        // inspect takes --cache-dir (the OCI store lives there): it moves along.
        assert_eq!(
            words("ovs-run --cache-dir X inspect a.wasm").unwrap(),
            ["ovs-run", "inspect", "--cache-dir", "X", "a.wasm"]
        );
        // A placement-only option a subcommand does not take is dropped.
        assert_eq!(
            words("ovs-run --ovsdb unix:/x inspect a.wasm").unwrap(),
            ["ovs-run", "inspect", "a.wasm"]
        );
        assert_eq!(
            words("ovs-run --ovsdb unix:/x -v gc --dry-run").unwrap(),
            ["ovs-run", "gc", "--ovsdb", "unix:/x", "--dry-run"]
        );
        assert_eq!(
            words("ovs-run --cache-dir=X -vv bind web a.wasm br0").unwrap(),
            ["ovs-run", "bind", "--cache-dir=X", "-vv", "web", "a.wasm", "br0"]
        );
        // Into the subcommand that takes them, a nested one included.
        assert_eq!(
            words("ovs-run --json inspect a.wasm").unwrap(),
            ["ovs-run", "inspect", "--json", "a.wasm"]
        );
        assert_eq!(
            words("ovs-run --trust D -v key list").unwrap(),
            ["ovs-run", "key", "list", "--trust", "D"]
        );
        assert_eq!(words("ovs-run --json key list"), Err(super::EXIT_USAGE));
        assert_eq!(
            words("ovs-run --docker unix:///d ls").unwrap(),
            ["ovs-run", "ls", "--docker", "unix:///d"]
        );
        // An option that changes what a command does is never dropped.
        assert_eq!(words("ovs-run --dry-run bind web a.wasm"), Err(super::EXIT_USAGE));
    }

    #[test]
    fn paths_and_plain_commands_are_left_alone() {
        for s in [
            "ovs-run ./x.wasm a",
            "ovs-run --dry-run scripts/attach.wasm br0",
            "ovs-run inspect a.wasm",
            "ovs-run --help",
            "ovs-run",
        ] {
            assert_eq!(words(s).unwrap(), s.split(' ').collect::<Vec<_>>());
        }
    }
}

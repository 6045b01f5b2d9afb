//! `ovs-run generate man DIR | completions SHELL` (hidden): the manual
//! pages and shell completions, made from the same clap definition that
//! parses the command line, so they cannot drift from it. `make install`
//! runs these.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, EXIT_SCRIPT_ERROR};

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Write ovs-run.1 and one ovs-run-SUBCOMMAND.1 per subcommand into DIR
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the completion script for SHELL on stdout
    Completions {
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
}

pub(super) fn run(what: What) -> i32 {
    match what {
        What::Man { dir } => match man(&dir) {
            Ok(n) => {
                eprintln!("ovs-run: wrote {n} manual pages into {}", dir.display());
                0
            }
            Err(e) => {
                eprintln!("ovs-run: generate man: {e}");
                EXIT_SCRIPT_ERROR
            }
        },
        What::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "ovs-run", &mut std::io::stdout());
            0
        }
    }
}

/// The pages for the command and every visible subcommand (nested ones
/// too: ovs-run-key-generate.1); returns how many were written.
fn man(dir: &Path) -> Result<usize, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut n = 0;
    write_pages(&cmd, "ovs-run", "ovs-run", dir, &mut n)?;
    Ok(n)
}

/// `name` is the page's ("ovs-run-key-generate"), `bin` how it is typed ("ovs-run key generate").
fn write_pages(cmd: &clap::Command, name: &str, bin: &str, dir: &Path, n: &mut usize) -> Result<(), String> {
    let page = cmd.clone().display_name(name.to_string()).bin_name(bin.to_string());
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out).map_err(|e| format!("rendering {name}: {e}"))?;
    let file = dir.join(format!("{name}.1"));
    std::fs::write(&file, out).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    *n += 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let sub_bin = format!("{bin} {}", sub.get_name());
        write_pages(sub, &format!("{name}-{}", sub.get_name()), &sub_bin, dir, n)?;
    }
    Ok(())
}

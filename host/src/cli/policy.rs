//! `ovs-run policy check|schema`: validate a Cedar policy file (and a tenants
//! file) against the ovs-run schema in strict mode, or print the schema.

use std::path::PathBuf;

use clap::Subcommand;

use super::{EXIT_SCRIPT_ERROR, EXIT_USAGE};
use crate::policy::cedar;

#[derive(Subcommand, Debug)]
pub enum Action {
    /// Validate FILE against the ovs-run schema (strict): unknown actions, entity types or
    /// attributes, type errors and syntax errors are reported with file:line:column; exit 1 when any
    Check {
        /// The Cedar policy file
        file: PathBuf,
        /// Also check this tenants file (Cedar entities, JSON) against the schema
        #[arg(long, value_name = "FILE")]
        tenants: Option<PathBuf>,
    },
    /// Print the Cedar schema policies are written against (principals, actions, resources, context)
    Schema,
}

pub fn run(action: Action) -> i32 {
    match action {
        Action::Schema => {
            print!("{}", cedar::SCHEMA_SRC);
            0
        }
        Action::Check { file, tenants } => {
            if !file.exists() {
                eprintln!("ovs-run: policy file {} does not exist", file.display());
                return EXIT_USAGE;
            }
            match cedar::check(&file, tenants.as_deref()) {
                Ok(summary) => {
                    println!("{summary}");
                    0
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    EXIT_SCRIPT_ERROR
                }
            }
        }
    }
}

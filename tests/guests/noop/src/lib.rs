//! `noop`: does nothing and succeeds. The benchmark runs it to measure what
//! ovs-run itself costs per run (start, compile cache, instantiation, exit).

use ovs_run_sdk::{Args, Error};

const USAGE: &str = "Usage: noop\n\nDoes nothing.";

fn main(_args: Args) -> Result<(), Error> {
    Ok(())
}

ovs_run_sdk::script!(main, usage: USAGE);

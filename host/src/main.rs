//! The `ovs-run` binary; everything lives in the library (see `cli`).

fn main() {
    std::process::exit(ovs_run::cli::main());
}

//! `ungranted`: a component that imports an interface the host does not
//! provide (`ovs-run:evil/raw-socket`). The host must refuse to instantiate
//! it; if it ever runs, it calls the import and reports the descriptor.
//!
//! It uses its own WIT world and not the SDK, so its only non-WASI import is
//! the ungranted one.

wit_bindgen::generate!({
    path: "wit",
    world: "ungranted",
});

use ovs_run::evil::raw_socket;

struct Ungranted;

impl Guest for Ungranted {
    fn run(_args: Vec<String>) -> Result<(), String> {
        let fd = raw_socket::open();
        println!("raw-socket fd={fd}");
        Ok(())
    }
}

export!(Ungranted);

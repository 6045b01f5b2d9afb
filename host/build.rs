//! Link flags for the `ovs-run` binary.

fn main() {
    // Pack the relative relocations (DT_RELR; binutils >= 2.38, glibc >= 2.36).
    // As a PIE, ovs-run has about 74 000 of them; as RELA entries they are a
    // 1.7 MiB table the loader reads page by page at every start, all of it
    // resident for the life of the process. Packed, it is a few KiB.
    println!("cargo:rustc-link-arg-bin=ovs-run=-Wl,-z,pack-relative-relocs");
    println!("cargo:rerun-if-changed=build.rs");
}

//! Embeds the eBPF object into the agent.
//!
//! `cargo xtask build` compiles observer-ebpf with nightly and points `OBSERVER_EBPF_OBJECT`
//! at the result. A plain `cargo build`/`cargo test` (no nightly toolchain needed) uses the last
//! object built in the default place if there is one, or embeds nothing: the pipeline, replay and
//! every unprivileged test work without it, and `observer run` says how to get it.

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo::rerun-if-env-changed=OBSERVER_EBPF_OBJECT");
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let object = env::var_os("OBSERVER_EBPF_OBJECT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            manifest_dir.join("../observer-ebpf/target/bpfel-unknown-none/release/observer")
        });
    println!("cargo::rerun-if-changed={}", object.display());

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("observer.bpf.o");
    let bytes = fs::read(&object).unwrap_or_default();
    fs::write(&out, &bytes).expect("write OUT_DIR/observer.bpf.o");
}

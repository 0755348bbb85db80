//! Picks the board from the target: `memory.x` for cortex-m-rt's `link.x`, and a
//! `board = "..."` cfg for the timer and interrupt numbers.
use std::{env, fs, path::PathBuf};

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let board = match target.as_str() {
        "thumbv7em-none-eabihf" => "mps2_an386",
        "thumbv6m-none-eabi" => "microbit",
        other => panic!(
            "no board for target {other:?}: build for thumbv7em-none-eabihf or thumbv6m-none-eabi"
        ),
    };
    let memory = format!("memory-{}.x", board.replace('_', "-"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy(&memory, out.join("memory.x")).expect("the board's memory map");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-cfg=board=\"{board}\"");
    println!("cargo:rustc-check-cfg=cfg(board, values(\"mps2_an386\", \"microbit\"))");
    println!("cargo:rerun-if-changed={memory}");
    println!("cargo:rerun-if-changed=build.rs");
}

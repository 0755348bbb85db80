fn main() {
    // Hosted linux: skip crt1.o (it wants a libc `main`); bare-metal targets link with
    // rust-lld, which takes no -nostartfiles.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-nostartfiles");
        // memcpy/memset come from the C library here (a bare-metal target gets them from
        // compiler-builtins). libc is not Rust's std or alloc, so the proof is unaffected.
        println!("cargo:rustc-link-arg-bins=-lc");
    }
}

//! Generates the C header into OUT_DIR; `make check-header` compares it with the committed
//! include/oasis_net.h (build.rs never writes into the source tree). Gives the shared library
//! its soname. The header is the same for every set of Cargo features: cbindgen reads the text
//! of src/ffi and does not know which features are on, and src/ffi has no `#[cfg(feature)]`
//! (tests/layering.rs) — a part left out is swapped below the FFI layer.
fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR");
    let config =
        cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml")).expect("cbindgen.toml");
    match cbindgen::Builder::new()
        .with_config(config)
        // mod.rs leads cbindgen to every file of the C surface.
        .with_src(format!("{crate_dir}/src/ffi/mod.rs"))
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(format!("{out_dir}/oasis_net.h"));
        }
        Err(err) => panic!("cbindgen failed: {err}"),
    }
    soname();
    arm_neon();
}

/// liboasisnet.so.MAJOR as the soname (ELF targets, GNU-style linkers, cross ones too), so that
/// programs record the ABI they were linked against and `make install` can put
/// liboasisnet.so.VERSION and its links side by side.
///
/// No version script of ours: rustc already links every cdylib with its own anonymous one that
/// exports exactly the `#[no_mangle] extern "C"` functions (the header's) and hides everything
/// else (Rust's allocator shims, `rust_eh_personality`, ring's C symbols), and GNU ld refuses a
/// second one ("anonymous version tag cannot be combined with other version tags").
/// tests/scripts/install-check.sh checks the exported list against include/oasis_net.h.
fn soname() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly"
    );
    if elf {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("CARGO_PKG_VERSION_MAJOR");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,liboasisnet.so.{major}");
    }
}

/// `cfg(arm_neon)` for 32-bit ARM code compiled for NEON: the thumbv7neon targets, or `+neon`
/// among the target features. rustc's own `target_feature = "neon"` is unstable on 32-bit ARM,
/// and a stable compiler leaves it out of `cfg` even where the code is compiled for NEON
/// (src/protocol/mask.rs chooses its loops by it).
fn arm_neon() {
    println!("cargo::rustc-check-cfg=cfg(arm_neon)");
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let target = var("TARGET");
    println!(
        "cargo:rerun-if-env-changed=CARGO_TARGET_{}_RUSTFLAGS",
        target.replace(['-', '.'], "_").to_uppercase()
    );
    if var("CARGO_CFG_TARGET_ARCH") != "arm" {
        return;
    }
    let neon = target.starts_with("thumbv7neon")
        || var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "neon")
        || var("CARGO_ENCODED_RUSTFLAGS")
            .split('\x1f')
            .any(|flag| flag.contains("target-feature") && flag.contains("+neon"));
    if neon {
        println!("cargo:rustc-cfg=arm_neon");
    }
}

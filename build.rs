//! Generates the C header into OUT_DIR; `make check-header` compares it with the committed
//! include/oasis_net.h (build.rs never writes into the source tree).
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
}

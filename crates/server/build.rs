//! Rebuilds the server when the web app it embeds changes (`src/web.rs` embeds `ui/dist`), and
//! gives utoipa's derive the configuration it reads from here.
//!
//! The embedding tracks only the files it found: a new build of the UI, whose assets have new
//! content-hashed names, would otherwise leave the old ones in the binary.

use std::path::Path;

fn main() {
    let dist = "../../ui/dist";
    if Path::new(dist).is_dir() {
        println!("cargo::rerun-if-changed={dist}");
    } else {
        // Not built yet: a path that does not exist would rerun this script, and rebuild the
        // server, on every build; `ui/` itself changes when its build appears.
        println!("cargo::rerun-if-changed=../../ui");
    }
    // With a build script the crate has an `OUT_DIR`, where utoipa's derive (its `config`
    // feature is on for the protocol crate) then expects its configuration file: the default,
    // as the server had before it had a build script (its handlers name their value types).
    utoipa_config::Config::new().write_to_file();
}

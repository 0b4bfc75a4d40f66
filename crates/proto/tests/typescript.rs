//! The web UI's copy of the protocol is the one generated from the Rust types: a change to a
//! wire type that is not regenerated fails here (and the UI's type check then shows what the
//! change breaks).

use std::path::PathBuf;

use tidings_proto::typescript::{PATH, declarations, keep};

#[test]
fn the_ui_has_the_protocol_as_generated_from_the_rust_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(PATH);
    let generated = declarations();
    keep(&path, &generated, "-p tidings-proto --test typescript")
        .unwrap_or_else(|err| panic!("{err}"));
    // Spot checks that the generator reads serde's attributes as the wire has them.
    assert!(generated.contains("\"type\": \"send\""), "{generated}");
    assert!(
        generated.contains("export type TransportKind = \"web_socket\""),
        "{generated}"
    );
}

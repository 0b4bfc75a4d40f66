include!("src/command_names.rs");

fn main() {
    // Declaring the app's commands makes each one need a permission: a webview is allowed only
    // the commands its capability lists (`capabilities/`), instead of all of them.
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
        .expect("tauri build script");
}

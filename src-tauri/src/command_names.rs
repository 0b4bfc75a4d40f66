// The names of the commands the app declares, one list for the build script (which generates an
// `allow-` and a `deny-` permission for each: commands without a permission are refused to every
// webview) and for the test that holds the main window's capability and the UI's desktop backend
// (`ui/src/backend/tauri.ts`) to it.
// Included by `build.rs`, so it is plain items without a module of its own.

/// Every command of `commands.rs`, as registered with `generate_handler!`.
pub const COMMANDS: &[&str] = &[
    "status",
    "host_group",
    "join_server",
    "trust_certificate",
    "rooms",
    "history",
    "send",
    "outbox",
    "mark_read",
    "edit_message",
    "delete_message",
    "react",
    "typing",
    "set_draft",
    "draft",
    "set_focused_room",
    "create_room",
    "open_dm",
    "join_room",
    "directory",
    "users",
    "members",
    "search",
    "upload",
    "cancel_upload",
    "attachment",
    "invite",
    "me",
    "admin",
    "manage_member",
    "create_invite",
    "revoke_invite",
    "lock_now",
    "unlock",
    "sessions",
    "revoke",
    "set_room_level",
    "room_level",
    "set_dnd",
    "transport",
    "set_transport",
    "open_link",
    "autostart",
    "set_autostart",
    "quit",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::COMMANDS;

    fn declared() -> BTreeSet<String> {
        COMMANDS.iter().map(|c| (*c).to_owned()).collect()
    }

    /// The name of every function marked `#[tauri::command]` in `commands.rs`.
    fn defined() -> BTreeSet<String> {
        let source = include_str!("commands.rs");
        let mut names = BTreeSet::new();
        let mut marked = false;
        for line in source.lines().map(str::trim) {
            if line.starts_with("#[tauri::command") {
                marked = true;
            } else if marked && let Some(rest) = line.split("fn ").nth(1) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.insert(name);
                marked = false;
            }
        }
        names
    }

    #[test]
    fn every_command_is_declared_and_nothing_else() {
        assert_eq!(defined(), declared());
    }

    #[test]
    fn the_main_window_is_allowed_exactly_the_commands_the_ui_calls() {
        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/main.json")).unwrap();
        let allowed: BTreeSet<String> = capability["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str()?.strip_prefix("allow-"))
            .map(|p| p.replace('-', "_"))
            .collect();
        // The UI's desktop backend: `invoke<…>('name'` for each command it calls.
        let backend = include_str!("../../ui/src/backend/tauri.ts");
        let called: BTreeSet<String> = backend
            .split("invoke<")
            .skip(1)
            .filter_map(|call| call.split('\'').nth(1))
            .map(str::to_owned)
            .collect();
        assert_eq!(allowed, called, "the capability allows what the UI calls");
        assert_eq!(called, declared(), "the UI calls every declared command");
    }
}

//! With the `openapi` feature: tells utoipa's derive what the id and time aliases of
//! `v1::model` are, so the schemas say "integer" where the types say `MessageId` or `Millis`.

fn main() {
    #[cfg(feature = "openapi")]
    utoipa_config::Config::new()
        .alias_for("UserId", "i64")
        .alias_for("RoomId", "i64")
        .alias_for("MessageId", "i64")
        .alias_for("SessionId", "i64")
        .alias_for("Millis", "i64")
        .write_to_file();
}

//! End-to-end tests of the server: real server, real SQLite, real WebSocket/SSE/HTTP clients.

mod admin;
mod attachments;
mod backup;
mod bad_input;
mod chat;
mod cluster;
mod disk;
mod feed;
mod http1;
mod metrics;
mod search;
mod stalled;
mod tls;
mod transports;
mod web;

/// A sender's rate limit raised out of the way, for tests that post faster than a person.
fn unthrottled(config: &mut tidings_server::Config) {
    config.limits.messages_per_second = 10_000;
    config.limits.message_burst = 10_000;
}

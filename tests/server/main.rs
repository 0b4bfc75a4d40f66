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

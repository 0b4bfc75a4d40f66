//! End-to-end tests of the client core against the real server: reconnects, the outbox, the
//! feed's resume, the session lock, and notifications.

mod attachments;
mod changes;
mod connection;
mod disk;
mod lock;
mod notify;
mod proxies;
mod search;
mod tls;
mod transports;

//! End-to-end tests of the web app in a real browser: Debian's Chromium (headed, on a virtual
//! display with a private D-Bus bus for its notifications), driven by chromedriver over
//! WebDriver as a person would, against the real server on loopback serving the app it embeds —
//! with the client core (what the CLI and the desktop app run) as another user.
//!
//! Every test saves screenshots to `target/e2e-screenshots/`.

mod support;

mod admin;
mod attachments;
mod chat;
mod lock;
mod markup;
mod notify;
mod security;
mod transports;

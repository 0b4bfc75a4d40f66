//! End-to-end tests of the desktop app on its real window: the built `tidings-desktop` binary,
//! launched by tauri-driver on a virtual display with a private D-Bus session bus, driven over
//! WebDriver (fantoccini) as a person would — typing, clicking, reading the DOM — against the
//! server it hosts or a test server, with the client core as a second user.
//!
//! Every test saves screenshots to `target/e2e-screenshots/`. The windows run one at a time
//! (tauri-driver's ports are fixed), whatever the test runner's thread count.

mod support;

mod admin;
mod features;
mod first_run;
mod footprint;
mod hosting;
mod lock;
mod markup;
mod notify;
mod reconnect;
mod transport;
mod trust;

//! What the app costs: time to an interactive window, and memory. Measured and reported, bounded
//! only loosely (the machine is shared).

use std::time::Duration;

use crate::support::{Window, report};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_time_and_memory_are_reported() {
    let window = Window::open("footprint").await;
    let startup = window.startup;
    window.shot("first-run").await;
    let first_run = window.memory();
    let first_run_kib: u64 = first_run.iter().map(|(_, kib)| kib).sum();

    window.host_group("ana").await;
    window.create_room("ops").await;
    window.send("hello").await;
    window.message("hello").await;
    let chat = window.memory();
    let chat_kib: u64 = chat.iter().map(|(_, kib)| kib).sum();
    window.shot("chat").await;

    report(&format!(
        "startup_ms={} pss_kib={first_run_kib} pss_kib_chat={chat_kib} processes={first_run:?}",
        startup.as_millis()
    ));
    assert!(
        first_run
            .iter()
            .any(|(name, _)| name.starts_with("WebKitWebProces")),
        "the web process is counted: {first_run:?}"
    );
    assert!(
        first_run
            .iter()
            .any(|(name, _)| name.starts_with("WebKitNetworkPr")),
        "the network process is counted: {first_run:?}"
    );
    assert!(startup < Duration::from_secs(30), "started in {startup:?}");
    assert!(first_run_kib > 0 && chat_kib > 0);
}

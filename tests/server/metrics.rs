//! What the person hosting sees: `/healthz` and `/readyz` on the public listener, and the
//! Prometheus text on a listener of its own, counting what was done.

use reqwest::StatusCode;
use tidings_tests::{PASSWORD, TestServer, post_message};

/// A port free a moment ago, for a listener the server opens itself.
fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The value of the sample `name` (with its labels) in `text`, if it is there.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_what_the_metrics_count() {
    let metrics_addr = free_port();
    let server = TestServer::start_with(|config| config.metrics.listen = Some(metrics_addr)).await;
    let http = tidings_client::http_builder().build().unwrap();
    for (path, says) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let answer = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        assert_eq!(answer.text().await.unwrap().trim(), says);
    }
    // Not on the public listener.
    let public = http.get(server.url("/metrics")).send().await.unwrap();
    assert!(
        !public
            .text()
            .await
            .unwrap()
            .contains("tidings_messages_stored")
    );

    let ana = server.owner().await;
    let bob = server.user("bob").await;
    let ops = ana.create_room("ops").await.room.id;
    bob.join(ops).await;
    let _chat = bob.chat().await;
    let mut feed = bob.feed(Some("0"));
    feed.expect("session").await;
    let wrong = http
        .post(server.url("/api/login"))
        .json(&serde_json::json!({ "name": "bob", "password": format!("{PASSWORD}x") }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    post_message(&ana, ops, "m1", "one").await;
    post_message(&ana, ops, "m2", "two").await;

    let scrape = async || {
        let answer = http
            .get(format!("http://{metrics_addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        answer.text().await.unwrap()
    };
    // The follower counts a message once it has applied it: wait (bounded) for both.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = scrape().await;
        if sample(&text, "tidings_messages_stored_total") == Some(2.0) {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for (name, value) in [
        ("tidings_logins_rejected_total", 1.0),
        ("tidings_feed_replays_total", 1.0),
        ("tidings_queue_kicks_total", 0.0),
        ("tidings_connections{transport=\"websocket\"}", 1.0),
        ("tidings_connections{transport=\"feed\"}", 1.0),
        ("tidings_fanout_seconds_count", 2.0),
    ] {
        assert_eq!(sample(&text, name), Some(value), "{name} in {text}");
    }
    // Every write is committed by the store's writer: at least the two messages, the room and
    // the logins, in transactions that each took some time.
    let commits = sample(&text, "tidings_store_commit_seconds_count").unwrap();
    assert!(commits >= 1.0, "{text}");
    assert_eq!(
        sample(&text, "tidings_store_commit_writes_count"),
        Some(commits)
    );
    assert!(sample(&text, "tidings_store_commit_writes_sum").unwrap() >= 2.0);
    assert!(sample(&text, "tidings_store_commit_seconds_sum").unwrap() > 0.0);

    // A connection that ends is no longer counted.
    drop(feed);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = scrape().await;
        if sample(&text, "tidings_connections{transport=\"feed\"}") == Some(0.0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A store that takes no writes makes the server unready, within a bound, and ready again once it
/// does: here another process holds SQLite's write lock, as a stuck backup or a full disk would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_so_while_the_store_takes_no_writes() {
    let server = TestServer::start().await;
    let http = tidings_client::http_builder().build().unwrap();
    let ready = async || {
        let answer = http.get(server.url("/readyz")).send().await.unwrap();
        (answer.status(), answer.text().await.unwrap())
    };
    assert_eq!(ready().await.0, StatusCode::OK);

    let other = rusqlite::Connection::open(server.config.database_path()).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (status, says) = ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{says}");
    assert!(says.starts_with("not ready: "), "{says}");

    other.execute_batch("COMMIT").unwrap();
    drop(other);
    // The writer retries its transaction once the lock is gone; bounded by SQLite's busy timeout.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (status, says) = ready().await;
        if status == StatusCode::OK {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status} {says}");
    }
}

//! Three `tidings-server` processes on one PostgreSQL database, one of them killed with SIGKILL
//! mid-run and started again. 30 clients — half on the WebSocket, half on the SSE feed — each hop
//! to the next node every 200 messages, resuming from their cursor, while 5,000 messages are
//! posted round-robin across the nodes (a post that fails is retried on the next node with the
//! same client id). In the end every client's stream is exactly the stored log from where it
//! started — no gap, no duplicate — and every client id is stored once.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tidings_proto::v1::{
    ClientFrame, EVENT_MESSAGE, HistoryPage, LoginResponse, MessageAlert, SUBPROTOCOL, ServerFrame,
};
use tokio::process::Child;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use support::*;

const NODES: usize = 3;
const USERS: usize = 10;
const SESSIONS_PER_USER: usize = 3;
const MESSAGES: usize = 5_000;
const HOP_EVERY: usize = 200;
/// The whole run, posting and catching up, must end within this.
const RUN_BOUND: Duration = Duration::from_secs(240);

struct Node {
    addr: String,
    child: Option<Child>,
}

fn env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TIDINGS_STORE", url.to_owned()),
        // Ten people post 500 messages each as fast as they can: no send rate here.
        ("TIDINGS_LIMITS__MESSAGES_PER_SECOND", "100000".to_owned()),
        ("TIDINGS_LIMITS__MESSAGE_BURST", "100000".to_owned()),
    ]
}

async fn start_node(data: &std::path::Path, url: &str, listen: &str) -> Node {
    let env = env(url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (child, mut lines) = serve_with(data, listen, &env);
    let base = listening(&mut lines, &mut Vec::new()).await;
    // Keep reading its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Node {
        addr: base.trim_start_matches("http://").to_owned(),
        child: Some(child),
    }
}

fn http() -> reqwest::Client {
    tidings_client::http_builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn login(http: &reqwest::Client, addr: &str, name: &str, password: &str) -> LoginResponse {
    let response = http
        .post(format!("http://{addr}/api/login"))
        .json(&serde_json::json!({"name": name, "password": password, "device": "cluster"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "login {name}");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_killed_clients_hopping_every_stream_is_the_log() {
    let url = tidings_engines::Postgres::shared()
        .fresh_database()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut init = command(&data);
    init.env("TIDINGS_STORE", &url)
        .args(["init", "--owner", "host", "--password-stdin"]);
    let (ok, out, err) = run(init, "a good password\n").await;
    assert!(ok, "init: {out} {err}");

    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(start_node(&data, &url, "127.0.0.1:0").await);
    }
    let addrs: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.addr.clone()).collect());
    let http = http();

    // The people, each logged in three times (a session per client), all in one room.
    let host = login(&http, &addrs[0], "host", "a good password").await;
    let room: serde_json::Value = answer(
        http.post(format!("http://{}/api/rooms", addrs[0]))
            .bearer_auth(&host.token)
            .json(&serde_json::json!({"name": "ops"})),
    )
    .await;
    let room = room["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("create room: {room}"));
    let mut tokens = Vec::new();
    let mut posters = Vec::new();
    for u in 0..USERS {
        let invite: serde_json::Value = answer(
            http.post(format!("http://{}/api/invites", addrs[u % NODES]))
                .bearer_auth(&host.token),
        )
        .await;
        let name = format!("user{u}");
        let registered: LoginResponse = http
            .post(format!("http://{}/api/register", addrs[u % NODES]))
            .json(&serde_json::json!({
                "invite": invite["code"], "name": name, "password": "a good password"
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let joined = http
            .post(format!("http://{}/api/rooms/{room}/join", addrs[u % NODES]))
            .bearer_auth(&registered.token)
            .send()
            .await
            .unwrap();
        assert!(joined.status().is_success());
        posters.push(registered.token);
        for _ in 0..SESSIONS_PER_USER {
            tokens.push(
                login(&http, &addrs[u % NODES], &name, "a good password")
                    .await
                    .token,
            );
        }
    }

    // The clients, from cursor 0 (the room is empty): even ones on the WebSocket, odd ones on
    // the feed, each starting on its own node.
    let deadline = Instant::now() + RUN_BOUND;
    let mut clients = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let addrs = Arc::clone(&addrs);
        clients.push(tokio::spawn(async move {
            if i % 2 == 0 {
                websocket_client(addrs, i % NODES, token, deadline).await
            } else {
                feed_client(addrs, i % NODES, token, deadline).await
            }
        }));
    }

    // The posters: ten at once, round-robin over the nodes, retrying on the next node.
    let posted = Arc::new(AtomicUsize::new(0));
    let mut sending = Vec::new();
    for (u, token) in posters.into_iter().enumerate() {
        let (addrs, posted, http) = (Arc::clone(&addrs), Arc::clone(&posted), http.clone());
        sending.push(tokio::spawn(async move {
            let mut node = u;
            for i in 0..MESSAGES / USERS {
                let client_id = format!("u{u}m{i}");
                loop {
                    node = (node + 1) % NODES;
                    assert!(Instant::now() < deadline, "posting took too long");
                    let sent = http
                        .post(format!("http://{}/api/rooms/{room}/messages", addrs[node]))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"client_id": client_id, "body": client_id}))
                        .send()
                        .await;
                    if matches!(&sent, Ok(r) if r.status().is_success()) {
                        break;
                    }
                    // Refused or cut: the next node, with the same client id.
                    tokio::task::yield_now().await;
                }
                posted.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // At 40 %, node 1 is killed and started again on its address.
    while posted.load(Ordering::Relaxed) < MESSAGES * 2 / 5 {
        assert!(Instant::now() < deadline, "posting stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut victim = nodes[1].child.take().unwrap();
    victim.start_kill().unwrap();
    victim.wait().await.unwrap();
    let killed_at = posted.load(Ordering::Relaxed);
    nodes[1] = start_node(&data, &url, &addrs[1]).await;
    for task in sending {
        task.await.unwrap();
    }

    // The log as stored: every client id once.
    let page: HistoryPage = http
        .get(format!(
            "http://{}/api/rooms/{room}/messages?limit=200",
            addrs[0]
        ))
        .bearer_auth(&host.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let newest = page.messages.last().unwrap().id;
    let log = stored_log(&http, &addrs[0], &host.token, room).await;
    assert_eq!(
        log.len(),
        MESSAGES,
        "every message acknowledged is stored once"
    );
    let mut client_ids: Vec<&str> = log.iter().map(|(_, c)| c.as_str()).collect();
    client_ids.sort_unstable();
    client_ids.dedup();
    assert_eq!(client_ids.len(), MESSAGES, "each client id stored once");
    assert_eq!(log.last().unwrap().0, newest);
    let log_ids: Vec<i64> = log.iter().map(|(id, _)| *id).collect();

    // Each client: its stream is the log, in order, nothing twice, nothing missing.
    for (i, client) in clients.into_iter().enumerate() {
        let (seen, hops) = client.await.unwrap();
        assert_eq!(seen, log_ids, "client {i} ({} hops)", hops);
        assert!(
            hops >= MESSAGES / HOP_EVERY - 1,
            "client {i} hopped {hops} times"
        );
    }
    eprintln!(
        "{MESSAGES} messages over {NODES} nodes, node 1 killed after {killed_at}; \
         30 clients each got the whole log"
    );
    for node in nodes {
        if let Some(child) = node.child {
            terminate(child).await;
        }
    }
}

/// Sends `request` and reads its JSON answer.
async fn answer<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> T {
    request.send().await.unwrap().json().await.unwrap()
}

/// The room's whole history, oldest first, as (id, client id).
async fn stored_log(
    http: &reqwest::Client,
    addr: &str,
    token: &str,
    room: i64,
) -> Vec<(i64, String)> {
    let mut log = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut url = format!("http://{addr}/api/rooms/{room}/messages?limit=200");
        if let Some(before) = before {
            url.push_str(&format!("&before={before}"));
        }
        let page: HistoryPage = answer(http.get(url).bearer_auth(token)).await;
        let mut older: Vec<(i64, String)> = page
            .messages
            .iter()
            .map(|m| (m.id, m.client_id.clone().unwrap_or_default()))
            .collect();
        before = older.first().map(|(id, _)| *id);
        older.extend(log);
        log = older;
        if !page.has_more {
            return log;
        }
    }
}

/// A WebSocket client, as the client core is one: on each connection it syncs from its cursor;
/// until that sync is answered to the end, live messages may come ahead of (and again within) the
/// sync's pages, so they are kept by id and do not move the cursor; from then on every message
/// must come once, in id order. Hops every `HOP_EVERY` messages, moves on to the next node when
/// its connection fails. Returns the ids it holds, ascending, and how often it hopped.
async fn websocket_client(
    addrs: Arc<Vec<String>>,
    mut node: usize,
    token: String,
    deadline: Instant,
) -> (Vec<i64>, usize) {
    let mut held = std::collections::BTreeSet::new();
    let mut cursor = 0;
    let mut hops = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "websocket client: only {} messages",
            held.len()
        );
        if held.len() >= MESSAGES {
            return (held.into_iter().collect(), hops);
        }
        let mut request = format!("ws://{}/api/ws", addrs[node])
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        let Ok(Ok((mut socket, _))) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(request),
        )
        .await
        else {
            node = (node + 1) % NODES;
            tokio::task::yield_now().await;
            continue;
        };
        let sync = serde_json::to_string(&ClientFrame::Sync { since: cursor }).unwrap();
        if socket.send(WsMessage::text(sync)).await.is_err() {
            node = (node + 1) % NODES;
            continue;
        }
        let mut caught_up = false;
        let mut this_connection = 0;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
            let Ok(Some(Ok(WsMessage::Text(text)))) = next else {
                match next {
                    Ok(Some(Ok(_))) => continue,
                    // Cut (the node was killed) or quiet for too long: the next node.
                    _ => break,
                }
            };
            match serde_json::from_str::<ServerFrame>(&text) {
                Ok(ServerFrame::Message(m)) => {
                    let new = held.insert(m.id);
                    if caught_up {
                        assert!(new, "message {} came twice after the sync", m.id);
                        assert!(
                            m.id > cursor,
                            "message {} after {cursor}: out of order",
                            m.id
                        );
                        cursor = m.id;
                    }
                    this_connection += 1;
                    if held.len() >= MESSAGES {
                        return (held.into_iter().collect(), hops);
                    }
                    if caught_up && this_connection >= HOP_EVERY {
                        hops += 1;
                        break;
                    }
                }
                Ok(ServerFrame::Synced {
                    latest_id,
                    has_more,
                }) => {
                    cursor = cursor.max(latest_id);
                    if has_more {
                        let sync =
                            serde_json::to_string(&ClientFrame::Sync { since: cursor }).unwrap();
                        if socket.send(WsMessage::text(sync)).await.is_err() {
                            break;
                        }
                    } else {
                        caught_up = true;
                        // Live messages already held past the cursor: the next ones follow them.
                        cursor = cursor.max(held.last().copied().unwrap_or(0));
                    }
                }
                _ => {}
            }
        }
        let _ = socket.close(None).await;
        node = (node + 1) % NODES;
    }
}

/// A client of the new-message feed: resumes with `Last-Event-ID` on each connection, hops every
/// `HOP_EVERY` messages, moves on when its stream fails.
async fn feed_client(
    addrs: Arc<Vec<String>>,
    mut node: usize,
    token: String,
    deadline: Instant,
) -> (Vec<i64>, usize) {
    let http = tidings_client::http_builder().no_proxy().build().unwrap();
    let seen = Mutex::new(Vec::<i64>::new());
    let mut hops = 0;
    loop {
        let mut got = seen.lock().await;
        assert!(
            Instant::now() < deadline,
            "feed client: only {} messages",
            got.len()
        );
        if got.len() >= MESSAGES {
            return (got.clone(), hops);
        }
        let cursor = got.last().copied().unwrap_or(0);
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            http.get(format!("http://{}/api/events", addrs[node]))
                .bearer_auth(&token)
                .header("Last-Event-ID", cursor.to_string())
                .send(),
        )
        .await;
        let Ok(Ok(response)) = response else {
            node = (node + 1) % NODES;
            drop(got);
            tokio::task::yield_now().await;
            continue;
        };
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        let mut this_connection = 0;
        'stream: loop {
            let chunk = tokio::time::timeout(Duration::from_secs(10), body.next()).await;
            let Ok(Some(Ok(chunk))) = chunk else { break };
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                let mut name = "";
                let mut data = String::new();
                for line in event.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if name == EVENT_MESSAGE {
                    let alert: MessageAlert = serde_json::from_str(&data).unwrap();
                    got.push(alert.id);
                    this_connection += 1;
                    if got.len() >= MESSAGES {
                        return (got.clone(), hops);
                    }
                    if this_connection >= HOP_EVERY {
                        hops += 1;
                        break 'stream;
                    }
                }
            }
        }
        drop(got);
        node = (node + 1) % NODES;
    }
}

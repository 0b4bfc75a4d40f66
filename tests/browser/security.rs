//! A page from another origin on loopback — another port of the same host (the session cookie
//! goes along: cookies do not care for ports) and another site (`localhost`) — cannot open the
//! chat channel or the feed with the user's cookie, and cannot post.

use std::net::SocketAddr;

use tidings_proto::v1::HistoryPage;
use tidings_tests::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{Browser, fresh, invite};

/// A server that answers every request with the same small page: the other origin.
async fn elsewhere() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let page = "<!doctype html><title>elsewhere</title><p>another site</p>";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

/// Tries, from the page in hand, everything a hostile page would with the user's cookie.
fn attack(target: &str, room: i64) -> String {
    format!(
        "const done = arguments[arguments.length - 1];
         const out = {{ ws: 'pending', feed: 'pending', stream: 'pending' }};
         const finish = () => {{ if (Object.values(out).every((v) => v !== 'pending')) done(out); }};
         const ws = new WebSocket('{ws}/api/ws', 'tidings.v1');
         ws.onopen = () => {{ out.ws = 'open'; ws.close(); finish(); }};
         ws.onclose = () => {{ if (out.ws === 'pending') out.ws = 'refused'; finish(); }};
         const feed = new EventSource('{target}/api/events', {{ withCredentials: true }});
         feed.onopen = () => {{ out.feed = 'open'; feed.close(); finish(); }};
         feed.onerror = () => {{ if (out.feed === 'pending') out.feed = 'refused'; feed.close(); finish(); }};
         const body = JSON.stringify({{ body: 'forged post' }});
         const frame = JSON.stringify({{ type: 'send', room: {room}, client_id: 'forged', body: 'forged frame' }});
         Promise.allSettled([
           fetch('{target}/api/rooms/{room}/messages', {{ method: 'POST', mode: 'no-cors', credentials: 'include', headers: {{ 'content-type': 'text/plain' }}, body }}),
           fetch('{target}/api/frames', {{ method: 'POST', mode: 'no-cors', credentials: 'include', body: frame }}),
           fetch('{target}/api/rooms/{room}/messages', {{ method: 'POST', credentials: 'include', headers: {{ 'content-type': 'application/json', 'x-tidings-csrf': '1' }}, body }}),
         ]).then(() => fetch('{target}/api/stream?cursor=0&hello=1', {{ credentials: 'include' }}))
           .then((r) => {{ out.stream = 'read ' + r.status; }}, () => {{ out.stream = 'refused'; }})
           .then(finish);",
        ws = target.replacen("http", "ws", 1),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_origin_cannot_use_the_session_cookie() {
    fresh("security");
    let server = TestServer::start().await;
    let page = Browser::open("security", "ana", &server.url("/")).await;
    page.register("ana", &invite(&server).await).await;
    let ops = page.create_room("ops").await;
    page.send("the only message").await;
    page.message("the only message").await;

    let other = elsewhere().await;
    for origin in [
        format!("http://127.0.0.1:{}/", other.port()),
        format!("http://localhost:{}/", other.port()),
    ] {
        page.driver
            .goto(&origin)
            .await
            .expect("opening the other origin");
        let seen = page.run(&attack(&server.url(""), ops)).await;
        assert_eq!(
            seen["ws"], "refused",
            "the chat channel from {origin}: {seen}"
        );
        assert_eq!(seen["feed"], "refused", "the feed from {origin}: {seen}");
        assert_eq!(
            seen["stream"], "refused",
            "the stream from {origin}: {seen}"
        );
    }
    page.shot("elsewhere").await;

    let stored: HistoryPage = server
        .login("ana", tidings_tests::PASSWORD)
        .await
        .get(&format!("/api/rooms/{ops}/messages?limit=50"))
        .await;
    let bodies: Vec<&str> = stored.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["the only message"], "nothing forged was stored");

    // And the app itself, back on its own origin, still works with the same cookie.
    page.driver
        .goto(&server.url("/"))
        .await
        .expect("back to the app");
    page.online().await;
    page.message("the only message").await;
}

//! The harness for end-to-end tests: the real server on `127.0.0.1:0` over a temporary data dir,
//! and real clients — an HTTP client, a WebSocket client offering `tidings.v1`, and an SSE client.
//!
//! Every wait is bounded by [`WAIT`]; nothing sleeps. A helper that does not see what it waits for
//! panics with what it saw instead, so a failing test says why.
//!
//! [`dbus`]: a private D-Bus session bus with a recording notification service, for tests of
//! desktop notifications. [`webdriver`]: pages (the desktop window, a browser tab) driven over
//! WebDriver.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use eventsource_client::{self as es, Client as _};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tempfile::TempDir;
use tidings_proto::v1::{
    ClientFrame, Hello, LoginRequest, LoginResponse, RegisterRequest, RoomState, SUBPROTOCOL,
    ServerFrame, SessionId, UserRef,
};
use tidings_server::{Config, ServerError};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

#[cfg(all(unix, not(target_os = "macos")))]
pub mod dbus;
#[cfg(unix)]
pub mod proxies;
pub mod tls;
#[cfg(all(unix, not(target_os = "macos")))]
pub mod tray;
#[cfg(unix)]
pub mod webdriver;

/// The longest any test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// The owner every test server is created with.
pub const OWNER: &str = "owner";
/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery";

/// A running server and the data dir it owns.
pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    dir: TempDir,
    stop: CancellationToken,
    task: JoinHandle<Result<(), ServerError>>,
    /// Over TLS: what the harness's own clients trust it with.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A configuration suited to tests: quick session ticks, everything else as shipped.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.session.feed_interval = Duration::from_millis(500);
    config
}

impl TestServer {
    /// A server with the test configuration and an owner account.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server whose wall time and timers follow the runtime's clock (`testing.paused_clock`),
    /// for tests run with `#[tokio::test(start_paused = true)]`: they pass expiries, heartbeats
    /// and timeouts at once and exactly (a paused runtime with nothing to do jumps to its next
    /// timer) instead of waiting for them.
    pub async fn start_paused(adjust: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_with(|config| {
            config.testing.paused_clock = true;
            adjust(config);
        })
        .await
    }

    /// A server whose test configuration `adjust` changes first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config();
        config.data_dir = dir.path().to_path_buf();
        adjust(&mut config);
        let store = tidings_server::open_store(&config)
            .await
            .expect("open store");
        // Nodes of a cluster share their store: the first one creates the owner.
        if !store.has_owner().await.expect("read the store") {
            let now = tidings_server::Clock::System.now_ms();
            tidings_server::account::add_user(
                &store,
                OWNER,
                PASSWORD,
                tidings_store::Role::Owner,
                now,
            )
            .await
            .expect("create owner");
        }
        store.close().await;
        TestServer::serve(dir, config, None).await
    }

    async fn serve(dir: TempDir, mut config: Config, addr: Option<SocketAddr>) -> TestServer {
        let listener = match addr {
            Some(addr) => TcpListener::bind(addr)
                .await
                .expect("rebind the same address"),
            None => TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        };
        let addr = listener.local_addr().expect("local addr");
        config.listen = addr;
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(tidings_server::run(listener, config.clone(), async move {
            signal.cancelled().await
        }));
        TestServer {
            addr,
            config,
            dir,
            stop,
            task,
            tls: None,
        }
    }

    /// A server over TLS with `pair` (its files in the data dir), whose harness clients trust
    /// `roots` (PEM: the CA's certificate, or the self-signed one).
    pub async fn start_tls(pair: &tls::Pair, roots: &str) -> TestServer {
        let mut server = TestServer::start_with(|config| {
            let (cert, key) = pair.write(&config.data_dir);
            config.tls_cert = Some(cert);
            config.tls_key = Some(key);
        })
        .await;
        server.tls = Some(tls::trusting(roots));
        server
    }

    /// An HTTP client for this server (over TLS, trusting what the server was started with).
    pub fn http(&self) -> reqwest::Client {
        match &self.tls {
            Some(tls) => tidings_client::http_builder()
                .no_proxy()
                .timeout(WAIT)
                .use_preconfigured_tls(rustls::ClientConfig::clone(tls))
                .build()
                .expect("https client"),
            None => http_client(),
        }
    }

    /// A node of a cluster: a server on the PostgreSQL database at `url`, which its nodes share.
    pub async fn node(url: &str) -> TestServer {
        TestServer::start_with(|config| config.store = Some(url.to_owned())).await
    }

    /// `n` nodes on a new database of this process's PostgreSQL server.
    pub async fn cluster(n: usize) -> Vec<TestServer> {
        let url = tidings_engines::Postgres::shared()
            .fresh_database()
            .expect("a database for the cluster");
        let mut nodes = Vec::new();
        for _ in 0..n {
            nodes.push(TestServer::node(&url).await);
        }
        nodes
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(self) -> (TempDir, Config, SocketAddr) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("server ran cleanly");
        (self.dir, self.config, self.addr)
    }

    /// Serves the data dir `config` names (kept in `dir`, which the server owns from now on) as
    /// it is: no owner is created.
    pub async fn serve_data(dir: TempDir, config: Config) -> TestServer {
        TestServer::serve(dir, config, None).await
    }

    /// Starts a server again on a data dir and address a stopped one left behind.
    pub async fn serve_again(dir: TempDir, config: Config, addr: SocketAddr) -> TestServer {
        TestServer::serve(dir, config, Some(addr)).await
    }

    /// Stops the server and starts a new one on the same address and data dir.
    pub async fn restart(self) -> TestServer {
        let tls = self.tls.clone();
        let (dir, config, addr) = self.stop().await;
        let mut server = TestServer::serve(dir, config, Some(addr)).await;
        server.tls = tls;
        server
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.config.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// What the server keeps in its attachments directory, sorted.
    pub fn attachments_kept(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.config.data_dir.join("attachments"))
            .map(|dir| {
                dir.map(|entry| {
                    entry
                        .expect("an entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Waits (at most [`WAIT`]) until the server keeps exactly `expected` in its attachments
    /// directory: its sweeper works in the background, so the test follows the directory.
    pub async fn until_attachments_kept(&self, expected: &[String], what: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let kept = self.attachments_kept();
            if kept == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: still keeping {kept:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn ws_url(&self) -> String {
        ws_url(&self.url("/api/ws"))
    }

    /// Logs in as the owner.
    pub async fn owner(&self) -> Client {
        self.login(OWNER, PASSWORD).await
    }

    /// Logs in as `name` (which must exist).
    pub async fn login(&self, name: &str, password: &str) -> Client {
        let http = self.http();
        let response = http
            .post(self.url("/api/login"))
            .json(&LoginRequest {
                name: name.into(),
                password: password.into(),
                device: Some("test".into()),
            })
            .send()
            .await
            .expect("login request");
        assert_eq!(response.status(), 200, "login as {name}");
        let login: LoginResponse = response.json().await.expect("login body");
        Client::new(self, http, login)
    }

    /// Registers a new user with an invite made by the owner, and logs them in.
    pub async fn user(&self, name: &str) -> Client {
        let owner = self.owner().await;
        let invite: tidings_proto::v1::Invite = owner.post("/api/invites", &()).await;
        let http = self.http();
        let response = http
            .post(self.url("/api/register"))
            .json(&RegisterRequest {
                invite: invite.code,
                name: name.into(),
                password: PASSWORD.into(),
                device: Some("test".into()),
            })
            .send()
            .await
            .expect("register request");
        assert_eq!(response.status(), 201, "register {name}");
        let login: LoginResponse = response.json().await.expect("register body");
        Client::new(self, http, login)
    }
}

/// The WebSocket URL of an HTTP one: `ws://` for `http://`, `wss://` for `https://`.
fn ws_url(http: &str) -> String {
    match http.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => http.replacen("http://", "ws://", 1),
    }
}

/// An HTTP client that never goes through a proxy: tests talk to loopback only.
pub fn http_client() -> reqwest::Client {
    tidings_client::http_builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("http client")
}

/// One logged-in session.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub addr: SocketAddr,
    pub token: String,
    pub user: UserRef,
    pub session: SessionId,
    /// Over TLS: what the chat connection trusts.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    fn new(server: &TestServer, http: reqwest::Client, login: LoginResponse) -> Client {
        Client {
            http,
            base: server.url(""),
            addr: server.addr,
            token: login.token,
            user: login.user,
            session: login.session.id,
            tls: server.tls.clone(),
        }
    }

    /// The same session against a server that was restarted on a new address.
    pub fn at(&self, server: &TestServer) -> Client {
        Client {
            base: server.url(""),
            addr: server.addr,
            ..self.clone()
        }
    }

    /// A request with this session's token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// GET, whatever it answers.
    pub async fn fetch(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {path}: {err}"))
    }

    /// GET that must succeed.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> T {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        assert!(status.is_success(), "GET {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    /// Every message of `room`'s history, oldest first, paged backwards through
    /// `GET /api/rooms/{id}/messages` as a client catching up would.
    pub async fn whole_history(&self, room: i64) -> Vec<tidings_proto::v1::Message> {
        let mut history = Vec::new();
        let mut before: Option<i64> = None;
        loop {
            let path = match before {
                Some(id) => format!("/api/rooms/{room}/messages?limit=200&before={id}"),
                None => format!("/api/rooms/{room}/messages?limit=200"),
            };
            let page: tidings_proto::v1::HistoryPage = self.get(&path).await;
            before = page.messages.first().map(|m| m.id);
            history.splice(0..0, page.messages);
            if !page.has_more {
                return history;
            }
        }
    }

    /// POST that must succeed.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> T {
        let response = self
            .request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        assert!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
    }

    pub async fn create_room(&self, name: &str) -> RoomState {
        self.post(
            "/api/rooms",
            &tidings_proto::v1::CreateRoom { name: name.into() },
        )
        .await
    }

    pub async fn join(&self, room: i64) -> RoomState {
        self.post(&format!("/api/rooms/{room}/join"), &()).await
    }

    pub async fn dm(&self, user: &str) -> RoomState {
        self.post("/api/dms", &tidings_proto::v1::OpenDm { user: user.into() })
            .await
    }

    /// The chat channel's handshake request: `tidings.v1` offered, this session's token.
    pub fn chat_request(&self) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        let mut request = ws_url(&format!("{}/api/ws", self.base))
            .into_client_request()
            .expect("ws request");
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", self.token)).expect("header"),
        );
        request
    }

    /// Opens the chat channel and reads the hello.
    pub async fn chat(&self) -> Chat {
        let mut chat = Chat::connect_with(self.chat_request(), self.tls.clone()).await;
        let hello = match chat.next().await {
            ServerFrame::Hello(hello) => hello,
            other => panic!("expected hello, got {other:?}"),
        };
        chat.hello = Some(hello);
        chat
    }

    /// Opens the event feed, optionally resuming after `last_event_id`.
    pub fn feed(&self, last_event_id: Option<&str>) -> Feed {
        let transport = launchdarkly_sdk_transport::HyperTransport::builder()
            .disable_proxy()
            .build_http()
            .expect("transport");
        let mut builder = es::ClientBuilder::for_url(&format!("{}/api/events", self.base))
            .expect("feed url")
            .header("Authorization", &format!("Bearer {}", self.token))
            .expect("header")
            .reconnect(es::ReconnectOptions::reconnect(false).build());
        if let Some(id) = last_event_id {
            builder = builder.last_event_id(id.to_owned());
        }
        let client = builder.build_with_transport(transport);
        Feed {
            stream: client.stream(),
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A chat channel connection.
pub struct Chat {
    pub socket: Socket,
    pub hello: Option<Hello>,
}

/// How the server ended a chat connection.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Chat {
    /// Connects with a raw request (for tests of the handshake itself).
    pub async fn connect(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Chat {
        Chat::connect_with(request, None).await
    }

    /// Connects with a raw request, over TLS trusting `tls` for a `wss://` URL.
    pub async fn connect_with(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Chat {
        let (socket, response) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async_tls_with_config(
                request,
                Some(WebSocketConfig::default()),
                false,
                tls.map(tokio_tungstenite::Connector::Rustls),
            ),
        )
        .await
        .expect("connect in time")
        .expect("websocket handshake");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(SUBPROTOCOL),
            "the server selects tidings.v1"
        );
        Chat {
            socket,
            hello: None,
        }
    }

    pub fn hello(&self) -> &Hello {
        self.hello.as_ref().expect("hello")
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        let text = serde_json::to_string(frame).expect("encode");
        self.send_raw(WsMessage::text(text)).await;
    }

    pub async fn send_raw(&mut self, message: WsMessage) {
        tokio::time::timeout(WAIT, self.socket.send(message))
            .await
            .expect("send in time")
            .expect("send");
    }

    /// The next frame from the server (pings and pongs skipped).
    pub async fn next(&mut self) -> ServerFrame {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a frame in time")
                .expect("connection open")
                .expect("frame");
            match message {
                WsMessage::Text(text) => {
                    return serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("undecodable frame {text}: {e}"));
                }
                WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Reads frames until one matches, skipping others (presence, typing, ...).
    pub async fn expect(
        &mut self,
        what: &str,
        mut matches: impl FnMut(&ServerFrame) -> bool,
    ) -> ServerFrame {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let frame = tokio::time::timeout_at(deadline, self.next())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}; saw {seen:?}"));
            if matches(&frame) {
                return frame;
            }
            seen.push(frame);
        }
    }

    /// Reads until the server closes the connection; returns its close frame.
    pub async fn closed(&mut self) -> Closed {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("the server closes in time");
            match next {
                Some(Ok(WsMessage::Close(Some(frame)))) => {
                    return Closed {
                        code: u16::from(frame.code),
                        reason: frame.reason.to_string(),
                    };
                }
                Some(Ok(WsMessage::Close(None))) => {
                    return Closed {
                        code: u16::from(CloseCode::Status),
                        reason: String::new(),
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("connection failed before a close frame: {err}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }
}

/// An SSE event as the client parsed it.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub id: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// An event feed connection.
pub struct Feed {
    stream: futures_util::stream::BoxStream<'static, Result<es::SSE, es::Error>>,
}

impl Feed {
    /// The next event, or None when the server ended the stream.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let item = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("an event in time");
            match item {
                None | Some(Err(es::Error::Eof)) => return None,
                Some(Err(err)) => panic!("feed failed: {err}"),
                Some(Ok(es::SSE::Event(e))) => {
                    return Some(Event {
                        name: e.event_type,
                        id: e.id,
                        data: e.data,
                    });
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Reads events until one named `name` arrives, skipping others (e.g. `session`).
    pub async fn expect(&mut self, name: &str) -> Event {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let next = tokio::time::timeout_at(deadline, self.next())
                .await
                .unwrap_or_else(|_| panic!("no {name} event within {WAIT:?}; saw {seen:?}"));
            match next {
                Some(event) if event.name == name => return event,
                Some(event) => seen.push(event),
                None => panic!("feed ended before a {name} event; saw {seen:?}"),
            }
        }
    }

    /// The error the feed fails with (for refused connections).
    pub async fn error(&mut self) -> es::Error {
        loop {
            let item = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("an answer in time");
            match item {
                Some(Err(err)) => return err,
                Some(Ok(_)) => continue,
                None => panic!("feed ended without an error"),
            }
        }
    }
}

/// Each search hit's text with its matched words in brackets: "[deploy] at noon".
pub fn marked(results: &tidings_proto::v1::SearchResults) -> Vec<String> {
    results
        .hits
        .iter()
        .map(|hit| {
            hit.highlight
                .iter()
                .map(|f| {
                    if f.hit {
                        format!("[{}]", f.text)
                    } else {
                        f.text.clone()
                    }
                })
                .collect()
        })
        .collect()
}

/// Sends a message over HTTP and returns it.
pub async fn post_message(
    client: &Client,
    room: i64,
    client_id: &str,
    body: &str,
) -> tidings_proto::v1::Message {
    client
        .post(
            &format!("/api/rooms/{room}/messages"),
            &tidings_proto::v1::SendMessage {
                client_id: Some(client_id.into()),
                body: body.into(),
                reply_to: None,
                attachments: Vec::new(),
            },
        )
        .await
}

/// A PNG of `width` × `height` pixels with something in it.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("a PNG");
    bytes
}

/// A client core for `name` (registered with an invite if new), with its own data dir, quick
/// reconnects, and a notifier that records what it would show.
pub struct TestClient {
    pub client: tidings_client::Client,
    pub events: tokio::sync::broadcast::Receiver<tidings_client::ClientEvent>,
    pub notes: std::sync::Arc<tidings_client::notify::RecordingNotifier>,
    pub dir: TempDir,
}

/// Client options for tests: reconnect quickly, record notifications.
pub fn client_options(
    notes: &std::sync::Arc<tidings_client::notify::RecordingNotifier>,
) -> tidings_client::ClientOptions {
    tidings_client::ClientOptions {
        device: "test client".into(),
        notifier: Some(notes.clone()),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(500),
        ..tidings_client::ClientOptions::default()
    }
}

impl TestClient {
    /// Registers `name` on `server` and logs a client core in as them.
    pub async fn new(server: &TestServer, name: &str) -> TestClient {
        TestClient::with_options(server, name, |_| {}).await
    }

    /// Like [`TestClient::new`], carrying the chat over `transport` only (when given).
    pub async fn over(
        server: &TestServer,
        name: &str,
        transport: Option<tidings_proto::v1::TransportKind>,
    ) -> TestClient {
        TestClient::with_options(server, name, |o| o.transport = transport).await
    }

    /// Like [`TestClient::new`], with options adjusted.
    pub async fn with_options(
        server: &TestServer,
        name: &str,
        adjust: impl FnOnce(&mut tidings_client::ClientOptions),
    ) -> TestClient {
        TestClient::via(server, &server.url(""), name, adjust).await
    }

    /// Like [`TestClient::with_options`], talking to the server at `url` (a relay in front of
    /// it) from the login on.
    pub async fn via(
        server: &TestServer,
        url: &str,
        name: &str,
        adjust: impl FnOnce(&mut tidings_client::ClientOptions),
    ) -> TestClient {
        drop(server.user(name).await);
        let dir = tempfile::tempdir().expect("temp dir");
        let notes = std::sync::Arc::new(tidings_client::notify::RecordingNotifier::new());
        let mut options = client_options(&notes);
        adjust(&mut options);
        let client = tidings_client::Client::open(&dir.path().join("client.db"), options)
            .expect("open client");
        let events = client.events();
        client
            .login(url, name, PASSWORD)
            .await
            .expect("client login");
        TestClient {
            client,
            events,
            notes,
            dir,
        }
    }

    /// Stops this client and opens a new one on the same data dir (a restart of the app).
    pub fn reopen(self) -> TestClient {
        self.reopen_over(None)
    }

    /// Like [`TestClient::reopen`], carrying the chat over `transport` (when given) only.
    pub fn reopen_over(self, transport: Option<tidings_proto::v1::TransportKind>) -> TestClient {
        self.client.shutdown();
        let mut options = client_options(&self.notes);
        options.transport = transport;
        let client = tidings_client::Client::open(&self.dir.path().join("client.db"), options)
            .expect("reopen client");
        let events = client.events();
        TestClient {
            client,
            events,
            notes: self.notes,
            dir: self.dir,
        }
    }

    /// The session token this client holds (from its local store), for tests that use it
    /// from outside the client.
    pub fn token(&self) -> String {
        tidings_client::store::LocalStore::open(&self.dir.path().join("client.db"))
            .and_then(|store| store.account())
            .expect("read the local store")
            .and_then(|account| account.token)
            .expect("a logged-in client")
    }

    /// Waits for an event matching `matches`, skipping others.
    pub async fn until(
        &mut self,
        what: &str,
        matches: impl FnMut(&tidings_client::ClientEvent) -> bool,
    ) -> tidings_client::ClientEvent {
        self.until_within(what, WAIT, false, matches).await
    }

    /// Like [`TestClient::until`], within `bound`, and tolerating a lag: for a long sync, which
    /// announces more messages than the event channel holds.
    pub async fn until_lagging(
        &mut self,
        what: &str,
        bound: Duration,
        matches: impl FnMut(&tidings_client::ClientEvent) -> bool,
    ) -> tidings_client::ClientEvent {
        self.until_within(what, bound, true, matches).await
    }

    async fn until_within(
        &mut self,
        what: &str,
        bound: Duration,
        lag_is_fine: bool,
        mut matches: impl FnMut(&tidings_client::ClientEvent) -> bool,
    ) -> tidings_client::ClientEvent {
        let deadline = tokio::time::Instant::now() + bound;
        let mut seen = Vec::new();
        loop {
            let next = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {bound:?}; saw {seen:?}"));
            match next {
                Ok(event) if matches(&event) => return event,
                Ok(event) if !lag_is_fine => seen.push(event),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) if lag_is_fine => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    panic!("test fell {n} events behind")
                }
                Err(err) => panic!("event stream ended: {err}"),
            }
        }
    }

    /// Waits until the client is online.
    pub async fn online(&mut self) {
        if matches!(
            self.client.state(),
            tidings_client::ConnectionState::Online { .. }
        ) {
            return;
        }
        self.until("online", |e| {
            matches!(
                e,
                tidings_client::ClientEvent::State(tidings_client::ConnectionState::Online { .. })
            )
        })
        .await;
    }
}

/// Set in the environment of a test run again inside its own mount namespace.
const PRIVATE_MOUNTS: &str = "TIDINGS_TESTS_PRIVATE_MOUNTS";

/// Runs the test named `test` (its full path, as `cargo test` prints it) again in a private mount
/// namespace, where it may mount small filesystems of its own without touching the machine's,
/// as root or not (`unshare --mount --map-root-user`). Returns `true` inside that run, where the
/// test goes on; outside, checks that the run passed and returns `false`.
pub fn in_private_mounts(test: &str) -> bool {
    if std::env::var_os(PRIVATE_MOUNTS).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let output = std::process::Command::new("unshare")
        .args(["--mount", "--map-root-user", "--"])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(PRIVATE_MOUNTS, "1")
        .output()
        .expect("unshare runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{test} in a private mount namespace failed:\n{stdout}\n{stderr}"
    );
    false
}

/// A tmpfs of `size` (as `mount -o size=` takes it: `2m`) mounted at `dir`; only inside
/// [`in_private_mounts`].
pub fn mount_tmpfs(dir: &std::path::Path, size: &str) {
    std::fs::create_dir_all(dir).expect("mount point");
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .expect("mount runs");
    assert!(status.success(), "mounting a tmpfs at {}", dir.display());
}

/// Fills the filesystem holding `dir` with a file until it has no space left; returns the file,
/// whose removal gives the space back.
pub fn fill_up(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 4096];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => {
                assert_eq!(
                    err.raw_os_error(),
                    Some(28),
                    "filling stops at ENOSPC: {err}"
                );
                break;
            }
        }
    }
    let _ = file.sync_all();
    path
}

/// A TCP relay in front of a server that can cut every connection through it at once, as a
/// network that drops connections would.
pub struct Relay {
    addr: SocketAddr,
    open: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let open =
            std::sync::Arc::new(std::sync::Mutex::new(Vec::<tokio::task::AbortHandle>::new()));
        let tracked = open.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relayed = tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                let mut open = tracked.lock().unwrap_or_else(|p| p.into_inner());
                open.retain(|h| !h.is_finished());
                open.push(relayed.abort_handle());
            }
        });
        Relay { addr, open, accept }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every connection through the relay, both ways, at once.
    pub fn cut(&self) {
        for relayed in self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            relayed.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A room named `busy` with three senders in it (the owner, `ann` and `bob`), for tests that
/// pour messages into a room while something else happens.
pub async fn busy_room(server: &TestServer) -> (i64, Vec<Client>) {
    let owner = server.owner().await;
    let room = owner.create_room("busy").await.room.id;
    let mut senders = vec![owner];
    for name in ["ann", "bob"] {
        let sender = server.user(name).await;
        sender.join(room).await;
        senders.push(sender);
    }
    (room, senders)
}

/// Posts `count` messages to `room`, spread over `senders` (message `i` from sender
/// `i % senders.len()`), each sender on its own task; each task yields the ids it was acked.
pub fn send_spread(senders: Vec<Client>, room: i64, count: usize) -> Vec<JoinHandle<Vec<i64>>> {
    let every = senders.len();
    senders
        .into_iter()
        .enumerate()
        .map(|(n, sender)| {
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in (n..count).step_by(every) {
                    let body = format!("message {i}");
                    ids.push(
                        post_message(&sender, room, &format!("c-{i}"), &body)
                            .await
                            .id,
                    );
                }
                ids
            })
        })
        .collect()
}

/// A small deterministic generator for where to cut a connection (seeded per test, so a
/// failure repeats).
pub struct Dice(pub u64);

impl Dice {
    /// A number below `below`.
    pub fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

//! The peers Tidings is compared with, each run as its own process like Tidings:
//!
//! - **naive axum**: axum + `tokio::sync::broadcast`, shaped like axum's chat example — one
//!   broadcast channel of 100, every text frame received sent to every connection, axum's default
//!   WebSocket buffers, and a lagging receiver ends its connection (the example's
//!   `while let Ok(..) = rx.recv()`). Served by this binary's `naive-server` subcommand.
//! - **Node `ws`**: the broadcast example from the `ws` package's README, installed with npm into
//!   the run's temporary directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;

/// The broadcast channel's capacity in axum's chat example.
const BROADCAST_CAPACITY: usize = 100;
/// The `ws` major version installed.
const WS_PACKAGE: &str = "ws@8";
/// npm gets this long to install it.
const NPM_TIMEOUT: Duration = Duration::from_secs(300);

/// Serves the naive broadcast server until SIGINT or SIGTERM.
pub async fn naive_server(listen: SocketAddr) -> Result<()> {
    let (tx, _) = broadcast::channel::<Utf8Bytes>(BROADCAST_CAPACITY);
    let app = Router::new().route("/ws", get(upgrade)).with_state(tx);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    // The line the benchmark waits for.
    println!("naive broadcast server listening on http://{addr}/ws");
    tokio::select! {
        served = axum::serve(listener, app) => served.context("serving")?,
        _ = terminated() => {}
    }
    Ok(())
}

async fn upgrade(State(tx): State<broadcast::Sender<Utf8Bytes>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| connection(socket, tx))
}

async fn connection(socket: WebSocket, tx: broadcast::Sender<Utf8Bytes>) {
    let (mut sink, mut stream) = socket.split();
    let mut rx = tx.subscribe();
    let mut send = tokio::spawn(async move {
        while let Ok(text) = rx.recv().await {
            if sink.send(Message::Text(text)).await.is_err() {
                break;
            }
        }
    });
    let mut recv = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message {
                let _ = tx.send(text);
            }
        }
    });
    tokio::select! {
        _ = &mut send => recv.abort(),
        _ = &mut recv => send.abort(),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn terminated() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The Node server's script: the `ws` README's broadcast example, on a free loopback port.
const NODE_SCRIPT: &str = r#"// tidings-bench's peer: the ws package README's broadcast example.
const { WebSocketServer, WebSocket } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws' });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
wss.on('listening', () => {
  console.log(`node ws broadcast server listening on http://127.0.0.1:${wss.address().port}/ws`);
});
process.on('SIGTERM', () => process.exit(0));
"#;

/// Installs `ws` with npm into `dir` and writes the server script there; returns the script.
pub async fn install_node_ws(dir: &Path) -> Result<PathBuf> {
    for tool in ["node", "npm"] {
        let found = tokio::process::Command::new(tool)
            .arg("--version")
            .output()
            .await
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            bail!("{tool} is not installed");
        }
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("package.json"),
        "{\"name\":\"tidings-bench-node-ws\",\"private\":true}\n",
    )?;
    let install = tokio::process::Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--loglevel=error",
            WS_PACKAGE,
        ])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(NPM_TIMEOUT, install)
        .await
        .context("npm install timed out")??;
    if !output.status.success() {
        bail!(
            "npm install {WS_PACKAGE} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let script = dir.join("broadcast.js");
    std::fs::write(&script, NODE_SCRIPT)?;
    Ok(script)
}

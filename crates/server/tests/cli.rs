//! The `tidings-server` binary as its host runs it: init, invite, serve, and a clean exit on
//! SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_tidings-server");
const WAIT: Duration = Duration::from_secs(20);

fn command(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("TIDINGS_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs a command to completion with `input` on stdin; returns (success, stdout, stderr).
async fn run(mut command: Command, input: &str) -> (bool, String, String) {
    let mut child = command.spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("exits in time")
        .expect("output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads stdout lines until one contains `needle`; returns that line.
async fn line_with(
    lines: &mut tokio::io::Lines<BufReader<ChildStdout>>,
    needle: &str,
    seen: &mut Vec<String>,
) -> String {
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
        panic!("stdout ended before {needle:?}; saw {seen:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in time"))
}

fn after<'a>(line: &'a str, label: &str) -> &'a str {
    line.split(label)
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
}

async fn serve(data_dir: &std::path::Path) -> (Child, tokio::io::Lines<BufReader<ChildStdout>>) {
    let mut command = command(data_dir);
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut child = command.spawn().expect("spawn serve");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

async fn login(base: &str, name: &str, password: &str) -> reqwest::StatusCode {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({"name": name, "password": password}))
        .send()
        .await
        .expect("login request")
        .status()
}

async fn terminate(mut child: Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits in time after SIGTERM")
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}

#[tokio::test]
async fn init_invite_serve_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let mut init = command(&data);
    init.args(["init", "--owner", "host", "--password-stdin"]);
    let (ok, out, err) = run(init, "a good password\n").await;
    assert!(ok, "init: {out} {err}");
    assert!(out.contains("owner host"), "{out}");

    // A second init refuses: the data dir already has an owner.
    let mut again = command(&data);
    again.args(["init", "--password-stdin"]);
    let (ok, _, err) = run(again, "another password\n").await;
    assert!(!ok);
    assert!(err.contains("already has an owner"), "{err}");

    let mut invite = command(&data);
    invite.arg("invite");
    let (ok, code, err) = run(invite, "").await;
    assert!(ok, "invite: {err}");
    let code = code.trim().to_owned();
    assert_eq!(code.len(), 19, "{code}");

    let (child, mut lines) = serve(&data).await;
    let mut seen = Vec::new();
    let line = line_with(&mut lines, "listening on", &mut seen).await;
    let base = after(&line, "listening on ").to_owned();
    assert_eq!(login(&base, "host", "a good password").await, 200);
    assert_eq!(login(&base, "host", "a wrong password").await, 401);
    let registered = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}/api/register"))
        .json(&serde_json::json!({"invite": code, "name": "guest", "password": "guest password"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(registered, 201);
    terminate(child).await;
}

#[tokio::test]
async fn serve_on_a_fresh_data_dir_prints_how_to_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let (child, mut lines) = serve(&dir.path().join("fresh")).await;
    let mut seen = Vec::new();
    let password = line_with(&mut lines, "Password:", &mut seen).await;
    let password = after(&password, "Password:").to_owned();
    let invite = line_with(&mut lines, "Invite code:", &mut seen).await;
    assert_eq!(after(&invite, "Invite code:").len(), 19);
    let line = line_with(&mut lines, "listening on", &mut seen).await;
    let base = after(&line, "listening on ").to_owned();
    assert_eq!(login(&base, "owner", &password).await, 200);
    terminate(child).await;
}

#[tokio::test]
async fn a_bad_config_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tidings.toml");
    std::fs::write(&config, "listen = \"not an address\"\n").unwrap();
    let mut serve = command(&dir.path().join("data"));
    serve.arg("--config").arg(&config).arg("serve");
    let (ok, _, err) = run(serve, "").await;
    assert!(!ok);
    assert!(
        err.contains("configuration") && err.contains("listen"),
        "{err}"
    );
}

//! Running the `tidings-server` binary from a test: init, serve, wait for it to listen, stop it.
//! Each test binary uses part of this.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_tidings-server");
pub const WAIT: Duration = Duration::from_secs(20);

pub fn command(data_dir: &std::path::Path) -> Command {
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
pub async fn run(mut command: Command, input: &str) -> (bool, String, String) {
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
pub async fn line_with(
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

pub fn after<'a>(line: &'a str, label: &str) -> &'a str {
    line.split(label)
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
}

pub type Stdout = tokio::io::Lines<BufReader<ChildStdout>>;

pub fn serve(data_dir: &std::path::Path) -> (Child, Stdout) {
    serve_with(data_dir, "127.0.0.1:0", &[])
}

/// `serve` on `listen`, with `env` added to its environment.
pub fn serve_with(
    data_dir: &std::path::Path,
    listen: &str,
    env: &[(&str, &str)],
) -> (Child, Stdout) {
    let mut command = command(data_dir);
    command
        .envs(env.iter().copied())
        .args(["serve", "--listen", listen]);
    let mut child = command.spawn().expect("spawn serve");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Reads the server's stdout until it says where it listens; returns its base URL.
pub async fn listening(lines: &mut Stdout, seen: &mut Vec<String>) -> String {
    let line = line_with(lines, "listening on", seen).await;
    after(&line, "listening on ").to_owned()
}

/// `init` with the owner `host` and the password "a good password".
pub async fn init_host(data: &std::path::Path) -> String {
    let mut init = command(data);
    init.args(["init", "--owner", "host", "--password-stdin"]);
    let (ok, out, err) = run(init, "a good password\n").await;
    assert!(ok, "init: {out} {err}");
    out
}

pub async fn login(base: &str, name: &str, password: &str) -> reqwest::StatusCode {
    tidings_client::http_builder()
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

/// Logs in as the host `init_host` made; answers with the session's token.
pub async fn host_token(http: &reqwest::Client, base: &str) -> String {
    let login: serde_json::Value = http
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({"name": "host", "password": "a good password"}))
        .send()
        .await
        .expect("login request")
        .json()
        .await
        .expect("a login answer");
    login["token"].as_str().expect("a token").to_owned()
}

/// Reads the server's log (stderr) as it comes, so that it cannot fill the pipe and stall the
/// server; answers with its lines once the process has closed it.
pub fn drain_log(child: &mut Child) -> tokio::task::JoinHandle<Vec<String>> {
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
    tokio::spawn(async move {
        let mut log = Vec::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            log.push(line);
        }
        log
    })
}

/// The server logged no error and did not panic.
pub fn assert_clean(log: Vec<String>) {
    let bad: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("ERROR") || l.contains("panicked"))
        .collect();
    assert!(bad.is_empty(), "the server logged: {bad:#?}");
}

/// Sends the running `child` the signal `name` (`TERM`, `HUP`), as `kill` would.
pub fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}");
}

pub async fn terminate(mut child: Child) {
    signal(&child, "TERM");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits in time after SIGTERM")
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}

/// Runs a test suite's command to its end (at most four minutes): it must succeed and say
/// `passed` on its standard output.
pub async fn passes(mut suite: Command, passed: &str) {
    let out = tokio::time::timeout(Duration::from_secs(240), suite.output())
        .await
        .expect("the suite ends in time")
        .expect("the suite runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the suite failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(passed), "{stdout}\n{stderr}");
}

/// A command-line tool installed from PyPI (scripts/deps.sh), run through `python3` so that its
/// scripts need not be on the PATH: `module.function()` is its entry point.
pub fn python_cli(name: &str, module: &str, function: &str) -> Command {
    let mut command = Command::new("python3");
    command
        .arg("-c")
        .arg(format!(
            "import sys; from {module} import {function}; sys.argv[0] = '{name}'; \
             sys.exit({function}())"
        ))
        .kill_on_drop(true);
    command
}

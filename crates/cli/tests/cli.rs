//! `tidings` as a user runs it: the built binary in child processes against the real server.
//!
//! Each test starts the server in-process on `127.0.0.1:0` over a temporary data dir
//! (`TestServer`), gives every `tidings` user a home dir of their own, and passes the password on
//! standard input. Other users act over HTTP with the harness's clients. Every wait is bounded by
//! `WAIT` and synchronises on the program's output or exit; nothing sleeps.

use std::process::Stdio;

use tempfile::TempDir;
use tidings_proto::v1::{HistoryPage, Revoked, RoomId};
use tidings_tests::{Client, PASSWORD, TestServer, WAIT, post_message};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const TIDINGS: &str = env!("CARGO_BIN_EXE_tidings");

/// Variables of the developer's environment that would take a child off loopback or onto their
/// desktop.
const OUTSIDE: &[&str] = &[
    "DBUS_SESSION_BUS_ADDRESS",
    "TIDINGS_HOME",
    "TIDINGS_LOG",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// One user's `tidings`: a home dir of its own.
struct Tidings {
    home: TempDir,
}

/// How one run ended.
struct Run {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The run, for failure messages.
    fn show(&self) -> String {
        format!(
            "`tidings {}` exited with {:?}\nstdout:\n{}\nstderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the run succeeded.
    fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "{}", self.show());
        self
    }

    /// Asserts the run failed with `code` and said why on stderr, with `words` in it.
    fn failed(self, code: i32, words: &str) -> Run {
        assert_eq!(self.code, Some(code), "{}", self.show());
        assert!(
            self.stderr.starts_with("tidings: ") && self.stderr.contains(words),
            "expected {words:?} on stderr: {}",
            self.show()
        );
        self
    }
}

impl Tidings {
    fn new() -> Tidings {
        Tidings {
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(TIDINGS);
        command.arg("--home").arg(self.home.path()).args(args);
        for name in OUTSIDE {
            command.env_remove(name);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `tidings ARGS` with `input` on standard input, to its end.
    async fn run(&self, args: &[&str], input: &str) -> Run {
        let mut child = self.command(args).spawn().expect("starting tidings");
        let mut stdin = child.stdin.take().expect("stdin");
        // A program that exits without reading its input closes the pipe: not this test's concern.
        let _ = stdin.write_all(input.as_bytes()).await;
        drop(stdin);
        let output = tokio::time::timeout(WAIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("`tidings {}` did not end within {WAIT:?}", args.join(" ")))
            .expect("tidings output");
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `tidings login` as `user` with the right password; must succeed.
    async fn login(&self, server: &TestServer, user: &str) -> Run {
        self.run(&["login", &server.url(""), user], &format!("{PASSWORD}\n"))
            .await
            .ok()
    }

    /// Starts `tidings ARGS` (a `tail`), on the private bus `bus` when given.
    fn spawn(&self, args: &[&str], bus: Option<&str>) -> Tail {
        let mut command = self.command(args);
        command.stdin(Stdio::null());
        if let Some(address) = bus {
            command.env("DBUS_SESSION_BUS_ADDRESS", address);
        }
        let mut child = command.spawn().expect("starting tidings");
        let out = lines(child.stdout.take().expect("stdout"));
        let err = lines(child.stderr.take().expect("stderr"));
        Tail {
            args: args.join(" "),
            child,
            out,
            err,
            read: 0,
        }
    }
}

/// A running `tidings tail`: its output as it comes, line by line.
struct Tail {
    args: String,
    child: Child,
    out: watch::Receiver<Vec<String>>,
    err: watch::Receiver<Vec<String>>,
    /// Stdout lines already returned by `next_line`.
    read: usize,
}

/// Collects a pipe's lines as they come. They are kept for the failure messages; one child
/// prints a few lines per test, so the list stays small. The sender goes with the pipe's end.
fn lines(pipe: impl AsyncRead + Unpin + Send + 'static) -> watch::Receiver<Vec<String>> {
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tx.send_modify(|all| all.push(line));
        }
    });
    rx
}

impl Tail {
    fn output(&self) -> String {
        format!(
            "`tidings {}`\nstdout: {:#?}\nstderr: {:#?}",
            self.args,
            *self.out.borrow(),
            *self.err.borrow()
        )
    }

    /// The next line on stdout.
    async fn next_line(&mut self) -> String {
        let want = self.read + 1;
        let seen = tokio::time::timeout(WAIT, self.out.wait_for(|lines| lines.len() >= want))
            .await
            .map(|result| result.map(|lines| lines[want - 1].clone()));
        match seen {
            Ok(Ok(line)) => {
                self.read = want;
                line
            }
            Ok(Err(_)) => panic!("stdout ended before line {want}: {}", self.output()),
            Err(_) => panic!("no line {want} within {WAIT:?}: {}", self.output()),
        }
    }

    /// Waits for a line on stderr equal to `line`.
    async fn says(&mut self, line: &str) {
        self.stderr_line(line, |l| l == line).await;
    }

    /// Waits for a line on stderr that `matches`; returns it.
    async fn stderr_line(&mut self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let seen = tokio::time::timeout(
            WAIT,
            self.err.wait_for(|lines| lines.iter().any(|l| matches(l))),
        )
        .await
        .ok()
        .and_then(|found| found.ok()?.iter().find(|l| matches(l)).cloned());
        seen.unwrap_or_else(|| panic!("no {what:?} on stderr: {}", self.output()))
    }

    /// Waits until both connections are up: the chat channel (messages come live) and the feed
    /// (alerts come, and with them notifications).
    async fn ready(&mut self) {
        self.says("tidings: online").await;
        self.says("tidings: session active").await;
    }

    /// Waits for the program to end by itself; its exit code.
    async fn exit(&mut self) -> Option<i32> {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("did not end within {WAIT:?}: {}", self.output()))
            .expect("wait");
        // The pipes close with the process; wait for the last lines.
        let _ = tokio::time::timeout(WAIT, self.err.wait_for(|_| false)).await;
        status.code()
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("stopping tidings tail");
    }
}

/// A room's messages as the server stores them.
async fn stored(client: &Client, room: RoomId) -> HistoryPage {
    client
        .get(&format!("/api/rooms/{room}/messages?limit=100"))
        .await
}

/// The HTTP status `GET /api/me` answers with the client's token.
async fn me_status(client: &Client) -> u16 {
    client
        .request(reqwest::Method::GET, "/api/me")
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Whether stderr tells the user to log in again (the client core says "log in again"; the CLI,
/// when it knows before asking the server, names the command).
fn says_log_in_again(run: &Run) -> bool {
    run.stderr.contains("log in again") || run.stderr.contains("run `tidings login` again")
}

#[tokio::test]
async fn login_rooms_send_and_history() {
    let server = TestServer::start().await;
    let bo = server.user("bo").await;
    let ana = server.user("ana").await;
    let ops = bo.create_room("ops").await.room.id;
    ana.join(ops).await;
    bo.create_room("elsewhere").await;
    post_message(&bo, ops, "b1", "first").await;
    post_message(&bo, ops, "b2", "second").await;

    let cli = Tidings::new();
    let login = cli.login(&server, "ana").await;
    assert_eq!(
        login.stdout,
        format!("logged in to {} as ana\n", server.url(""))
    );
    assert!(!login.stdout.contains(PASSWORD) && !login.stderr.contains(PASSWORD));

    // Only Ana's rooms, with what she has not read.
    let rooms = cli.run(&["rooms"], "").await.ok();
    assert_eq!(rooms.stdout, format!("{ops}\t#ops\t2 unread\n"));

    let sent = cli
        .run(&["send", "#ops", "hello from the cli"], "")
        .await
        .ok();
    let page = stored(&bo, ops).await;
    let last = page.messages.last().expect("a message");
    assert_eq!(
        (last.author.name.as_str(), last.body.as_str()),
        ("ana", "hello from the cli")
    );
    assert_eq!(sent.stdout, format!("sent #{} to #ops\n", last.id));

    // `-` reads the text from standard input, lines and all.
    cli.run(&["send", "ops", "-"], "line one\nline two\n")
        .await
        .ok();
    let bodies: Vec<String> = stored(&bo, ops)
        .await
        .messages
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        bodies,
        [
            "first",
            "second",
            "hello from the cli",
            "line one\nline two"
        ],
        "each message stored once, in order"
    );

    let history = cli.run(&["history", "#ops"], "").await.ok();
    assert_eq!(
        history.stdout,
        "bo: first\nbo: second\nana: hello from the cli\nana: line one\n    line two\n"
    );
    server.stop().await;
}

/// A server whose certificate is self-signed: `login` refuses it and shows its fingerprint with
/// the command that trusts it; after `tidings trust`, login and send go through (https and wss).
#[tokio::test]
async fn a_self_signed_server_is_trusted_only_when_told() {
    let pair = tidings_tests::tls::Pair::self_signed();
    let server = TestServer::start_tls(&pair, &pair.cert_pem).await;
    let bo = server.user("bo").await;
    let ana = server.user("ana").await;
    let ops = bo.create_room("ops").await.room.id;
    ana.join(ops).await;
    let url = server.url("");

    let cli = Tidings::new();
    let refused = cli
        .run(&["login", &url, "ana"], &format!("{PASSWORD}\n"))
        .await
        .failed(3, "is not trusted");
    let fingerprint = pair.fingerprint();
    assert!(
        refused
            .stderr
            .contains(&format!("tidings trust {url} {fingerprint}")),
        "{}",
        refused.show()
    );
    cli.run(&["trust", &url, "not a fingerprint"], "")
        .await
        .failed(2, "not a SHA-256 fingerprint");
    cli.run(&["trust", &url, &fingerprint], "").await.ok();
    cli.login(&server, "ana").await;
    cli.run(&["send", "#ops", "over TLS"], "").await.ok();
    let page = stored(&bo, ops).await;
    assert_eq!(
        page.messages.last().map(|m| m.body.as_str()),
        Some("over TLS")
    );
}

#[tokio::test]
async fn tail_prints_new_messages_of_every_room_or_of_one() {
    let server = TestServer::start().await;
    let bo = server.user("bo").await;
    let ana = server.user("ana").await;
    let ops = bo.create_room("ops").await.room.id;
    let dev = bo.create_room("dev").await.room.id;
    ana.join(ops).await;
    ana.join(dev).await;
    let cli = Tidings::new();
    cli.login(&server, "ana").await;
    // Sent while no `tidings` runs: the next tail shows it first, from the sync as it connects.
    post_message(&bo, ops, "b0", "while you were away").await;

    let mut tail = cli.spawn(&["tail", "--no-notify"], None);
    assert_eq!(tail.next_line().await, "[#ops] bo: while you were away");
    tail.says("tidings: online").await;
    post_message(&bo, ops, "b1", "hello").await;
    assert_eq!(tail.next_line().await, "[#ops] bo: hello");
    post_message(&bo, dev, "b2", "over in dev\nwith a second line").await;
    assert_eq!(tail.next_line().await, "[#dev] bo: over in dev");
    assert_eq!(tail.next_line().await, "    with a second line");
    tail.stop().await;

    // One room: the other's messages, sent first, are not shown; nor is anything shown before.
    let mut tail = cli.spawn(&["tail", "#ops", "--no-notify"], None);
    tail.says("tidings: online").await;
    post_message(&bo, dev, "b3", "not for ops").await;
    post_message(&bo, ops, "b4", "for ops").await;
    assert_eq!(tail.next_line().await, "[#ops] bo: for ops");
    post_message(&bo, dev, "b5", "still not for ops").await;
    post_message(&bo, ops, "b6", "ops again").await;
    assert_eq!(tail.next_line().await, "[#ops] bo: ops again");
    tail.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn tail_warns_when_the_session_is_about_to_end() {
    let server = TestServer::start_with(|config| {
        config.session.lifetime = std::time::Duration::from_secs(3600);
        config.session.expiring_warning = std::time::Duration::from_secs(7200);
    })
    .await;
    drop(server.user("ana").await);
    let cli = Tidings::new();
    cli.login(&server, "ana").await;
    let mut tail = cli.spawn(&["tail", "--no-notify"], None);
    let warning = tail
        .stderr_line("the expiry warning", |l| l.starts_with("tidings: session"))
        .await;
    assert!(
        [59, 60].iter().any(|min| warning
            == format!("tidings: session ends in {min} min; `tidings login` starts a new one")),
        "{}",
        tail.output()
    );
    tail.stop().await;
    server.stop().await;
}

#[cfg(all(unix, not(target_os = "macos")))]
mod notify {
    use tidings_tests::dbus::{NotificationService, PrivateBus};

    use super::*;

    #[tokio::test]
    async fn tail_raises_a_desktop_notification_for_someone_elses_message() {
        let bus = PrivateBus::start();
        let mut service = NotificationService::start(&bus).await;
        let server = TestServer::start().await;
        let bo = server.user("bo").await;
        // Ana's phone: her own messages from elsewhere.
        let phone = server.user("ana").await;
        let ops = bo.create_room("ops").await.room.id;
        let dev = bo.create_room("dev").await.room.id;
        phone.join(ops).await;
        phone.join(dev).await;
        let cli = Tidings::new();
        cli.login(&server, "ana").await;

        let mut tail = cli.spawn(&["tail"], Some(bus.address()));
        tail.ready().await;
        post_message(&bo, ops, "b1", "hello").await;
        assert_eq!(tail.next_line().await, "[#ops] bo: hello");
        let call = service.expect("bo's message").await;
        assert_eq!(call.app_name, "Tidings", "{call:?}");
        assert_eq!(call.summary, "bo in #ops", "{call:?}");
        assert_eq!(call.body, "hello", "{call:?}");
        assert_eq!(call.replaces_id, 0, "a new notification: {call:?}");

        // Ana's own message raises nothing. The feed handles alerts in order and the notifier
        // shows them in order, so a notification for it would come before the next one.
        post_message(&phone, dev, "a1", "my own").await;
        assert_eq!(tail.next_line().await, "[#dev] ana: my own");
        post_message(&bo, dev, "b2", "<b>ship</b> it & go").await;
        assert_eq!(tail.next_line().await, "[#dev] bo: <b>ship</b> it & go");
        let call = service.expect("bo's second message").await;
        assert_eq!(call.summary, "bo in #dev", "{call:?}");
        assert_eq!(call.body, "&lt;b&gt;ship&lt;/b&gt; it &amp; go", "{call:?}");
        tail.stop().await;
        assert_eq!(service.try_next(), None);
        server.stop().await;
    }

    #[tokio::test]
    async fn tail_with_no_notify_raises_none() {
        let bus = PrivateBus::start();
        let mut service = NotificationService::start(&bus).await;
        let server = TestServer::start().await;
        let bo = server.user("bo").await;
        let ana = server.user("ana").await;
        let cy = server.user("cy").await;
        let ops = bo.create_room("ops").await.room.id;
        let dev = bo.create_room("dev").await.room.id;
        ana.join(ops).await;
        cy.join(dev).await;
        let ana_cli = Tidings::new();
        ana_cli.login(&server, "ana").await;
        let cy_cli = Tidings::new();
        cy_cli.login(&server, "cy").await;

        // Both on the bus, both with their feed up: Ana's would notify if it could.
        let mut quiet = ana_cli.spawn(&["tail", "--no-notify"], Some(bus.address()));
        let mut loud = cy_cli.spawn(&["tail"], Some(bus.address()));
        quiet.ready().await;
        loud.ready().await;

        // Ana's message first; Cy's, after Ana's tail has shown hers, is the control: the only
        // notification, and the first.
        post_message(&bo, ops, "b1", "for ana, quietly").await;
        assert_eq!(quiet.next_line().await, "[#ops] bo: for ana, quietly");
        post_message(&bo, dev, "b2", "for cy").await;
        assert_eq!(loud.next_line().await, "[#dev] bo: for cy");
        let call = service.expect("cy's message").await;
        assert_eq!(
            (call.summary.as_str(), call.body.as_str()),
            ("bo in #dev", "for cy"),
            "--no-notify raised a notification: {call:?}"
        );
        quiet.stop().await;
        loud.stop().await;
        assert_eq!(service.try_next(), None);
        server.stop().await;
    }
}

#[tokio::test]
async fn sessions_lists_them_and_revoke_ends_them() {
    let server = TestServer::start().await;
    // Registering logs Ana in: her laptop.
    let laptop = server.user("ana").await;
    let cli = Tidings::new();
    cli.login(&server, "ana").await;

    let sessions = cli.run(&["sessions"], "").await.ok();
    let lines: Vec<&str> = sessions.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", sessions.show());
    let this: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.ends_with("(this one)"))
        .collect();
    assert_eq!(this.len(), 1, "{}", sessions.show());
    let fields: Vec<&str> = this[0].split('\t').collect();
    let id: i64 = fields[0].parse().expect("a session id");
    assert_eq!(fields[1], "tidings-cli", "{}", sessions.show());
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{}\ttest\t", laptop.session))),
        "{}",
        sessions.show()
    );

    let phone = server.login("ana", PASSWORD).await;
    let revoked = cli.run(&["revoke", "--others"], "").await.ok();
    assert_eq!(revoked.stdout, "revoked 2 other session(s)\n");
    assert_eq!(me_status(&laptop).await, 401);
    assert_eq!(me_status(&phone).await, 401);
    let sessions = cli.run(&["sessions"], "").await.ok();
    assert!(
        sessions.stdout.starts_with(&format!("{id}\ttidings-cli\t"))
            && sessions.stdout.ends_with("(this one)\n")
            && sessions.stdout.lines().count() == 1,
        "{}",
        sessions.show()
    );

    let tablet = server.login("ana", PASSWORD).await;
    assert_eq!(me_status(&tablet).await, 200);
    let revoked = cli
        .run(&["revoke", &tablet.session.to_string()], "")
        .await
        .ok();
    assert_eq!(
        revoked.stdout,
        format!("revoked session {}\n", tablet.session)
    );
    assert_eq!(me_status(&tablet).await, 401);
    cli.run(&["sessions"], "").await.ok();
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_server_url_exits_3() {
    // Nothing listens on a port just released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let cli = Tidings::new();
    let input = format!("{PASSWORD}\n");
    cli.run(&["login", &format!("http://{closed}"), "ana"], &input)
        .await
        .failed(3, "cannot reach the server");
    cli.run(&["login", "not-a-url", "ana"], &input)
        .await
        .failed(3, "not a server URL");
    // Nothing was saved.
    cli.run(&["rooms"], "").await.failed(4, "not logged in");
}

#[tokio::test]
async fn a_wrong_password_exits_4() {
    let server = TestServer::start().await;
    drop(server.user("ana").await);
    let cli = Tidings::new();
    cli.run(&["login", &server.url(""), "ana"], "not the password\n")
        .await
        .failed(4, "wrong user name or password");
    cli.run(
        &["login", &server.url(""), "nobody"],
        &format!("{PASSWORD}\n"),
    )
    .await
    .failed(4, "wrong user name or password");
    cli.run(&["rooms"], "").await.failed(4, "not logged in");
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_room_exits_5() {
    let server = TestServer::start().await;
    let bo = server.user("bo").await;
    let ana = server.user("ana").await;
    let ops = bo.create_room("ops").await.room.id;
    ana.join(ops).await;
    // A room that exists, without Ana.
    let private = bo.create_room("private").await.room.id;
    let cli = Tidings::new();
    cli.login(&server, "ana").await;

    cli.run(&["send", "#nope", "hello?"], "")
        .await
        .failed(5, "no room \"#nope\"");
    cli.run(&["send", "private", "let me in"], "")
        .await
        .failed(5, "no room \"private\"");
    cli.run(&["history", &private.to_string()], "")
        .await
        .failed(5, &format!("no room \"{private}\""));
    cli.run(&["tail", "nope", "--no-notify"], "")
        .await
        .failed(5, "no room \"nope\"");
    assert!(stored(&bo, private).await.messages.is_empty());
    assert!(stored(&bo, ops).await.messages.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_revoked_session_exits_4_until_the_user_logs_in_again() {
    let server = TestServer::start().await;
    let bo = server.user("bo").await;
    let ana = server.user("ana").await;
    let ops = bo.create_room("ops").await.room.id;
    ana.join(ops).await;
    let cli = Tidings::new();
    cli.login(&server, "ana").await;

    // Ana's phone signs every other session out while no `tidings` runs.
    let phone = server.login("ana", PASSWORD).await;
    let revoked: Revoked = {
        let response = phone
            .request(reqwest::Method::DELETE, "/api/sessions")
            .send()
            .await
            .expect("revoke request");
        assert_eq!(response.status(), 200);
        response.json().await.expect("revoked")
    };
    assert_eq!(revoked.revoked.len(), 2, "{revoked:?}");
    let run = cli.run(&["send", "#ops", "are you there?"], "").await;
    let run = run.failed(4, "again");
    assert!(says_log_in_again(&run), "{}", run.show());
    let run = cli.run(&["rooms"], "").await.failed(4, "again");
    assert!(says_log_in_again(&run), "{}", run.show());
    assert!(stored(&bo, ops).await.messages.is_empty());

    // Logging in again unlocks it; a running `tail` then ends when the session is revoked.
    cli.login(&server, "ana").await;
    let mut tail = cli.spawn(&["tail", "--no-notify"], None);
    tail.ready().await;
    let response = phone
        .request(reqwest::Method::DELETE, "/api/sessions")
        .send()
        .await
        .expect("revoke request");
    assert_eq!(response.status(), 200);
    assert_eq!(tail.exit().await, Some(4), "{}", tail.output());
    assert!(
        tail.err
            .borrow()
            .iter()
            .any(|l| l.starts_with("tidings: session locked") && l.contains("tidings login")),
        "{}",
        tail.output()
    );
    cli.run(&["send", "#ops", "still there?"], "")
        .await
        .failed(4, "tidings login");

    cli.login(&server, "ana").await;
    cli.run(&["send", "#ops", "back again"], "").await.ok();
    let bodies: Vec<String> = stored(&bo, ops)
        .await
        .messages
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["back again"]);
    server.stop().await;
}

#[tokio::test]
async fn without_a_login_every_command_exits_4() {
    let cli = Tidings::new();
    for args in [
        &["rooms"][..],
        &["send", "#ops", "hello"],
        &["history", "#ops"],
        &["tail", "--no-notify"],
        &["sessions"],
        &["revoke", "--others"],
    ] {
        cli.run(args, "").await.failed(4, "not logged in");
    }
}

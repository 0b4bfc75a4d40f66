//! `tidings`: the Tidings command-line client, a thin shell over the client core.
//!
//! Exit codes: 0 done; 1 anything else; 2 bad usage; 3 the server cannot be reached (or the URL
//! is wrong, or its certificate is not trusted); 4 wrong password or locked session (log in again); 5 unknown room.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use tidings_client::notify::{DesktopNotifier, Notifier};
use tidings_client::{
    Client, ClientError, ClientEvent, ClientOptions, ConnectionState, room_label,
};
use tidings_proto::v1::{
    ErrorCode, Message, RoomState, SessionState, SessionStatus, TransportKind,
};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

#[derive(Debug, Parser)]
#[command(
    name = "tidings",
    version,
    about = "Chat on a Tidings server from the command line"
)]
struct Cli {
    /// Where the client keeps its data [default: the user's data dir].
    #[arg(long, global = true, env = "TIDINGS_HOME")]
    home: Option<PathBuf>,
    /// Carry the chat over this transport only: websocket, sse, streaming, long-polling or
    /// short-polling [default: the best one the network lets through].
    #[arg(long, global = true, env = "TIDINGS_TRANSPORT", value_parser = transport)]
    transport: Option<TransportKind>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in to a server (password from a prompt, or the first line of standard input).
    Login {
        /// The server, e.g. http://127.0.0.1:7878
        url: String,
        user: String,
    },
    /// Trust a server's TLS certificate that no authority vouches for (a self-signed one), by
    /// its SHA-256 fingerprint: only after comparing it with the one the host gave you.
    Trust {
        /// The server, e.g. https://chat.example:7878
        url: String,
        /// AA:BB:…, as `tidings login` showed it.
        fingerprint: String,
    },
    /// List your rooms with unread counts.
    Rooms,
    /// Send a message to a room (#name, name, @user for a DM, or id).
    Send {
        room: String,
        /// The text; `-` or nothing reads it from standard input.
        text: Option<String>,
    },
    /// Show a room's recent history.
    History {
        room: String,
        /// How many messages.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Follow new messages (of one room, or all) and the session's state.
    Tail {
        room: Option<String>,
        /// Do not raise desktop notifications.
        #[arg(long)]
        no_notify: bool,
    },
    /// List this account's sessions.
    Sessions,
    /// Revoke a session by id, or every other session.
    Revoke {
        #[arg(required_unless_present = "others", conflicts_with = "others")]
        id: Option<i64>,
        #[arg(long)]
        others: bool,
    },
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        let code = error
            .chain()
            .find_map(|e| e.downcast_ref::<ClientError>())
            .map(exit_code)
            .unwrap_or(1);
        Failure { code, error }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Failure {
            code: exit_code(&error),
            error: error.into(),
        }
    }
}

fn exit_code(error: &ClientError) -> u8 {
    match error {
        ClientError::BadUrl(_)
        | ClientError::Unreachable(_)
        | ClientError::UntrustedCertificate { .. } => 3,
        ClientError::BadFingerprint(_) => 2,
        ClientError::Locked | ClientError::NoAccount => 4,
        ClientError::Server(body) => match body.code {
            ErrorCode::BadCredentials | ErrorCode::Unauthorized => 4,
            ErrorCode::UnknownRoom | ErrorCode::NotMember => 5,
            _ => 1,
        },
        _ => 1,
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TIDINGS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("tidings: cannot start: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("tidings: {:#}", failure.error);
            let untrusted = failure.error.chain().find_map(|e| match e.downcast_ref() {
                Some(ClientError::UntrustedCertificate {
                    server,
                    fingerprint,
                    ..
                }) => Some((server.clone(), fingerprint.clone())),
                _ => None,
            });
            if let Some((server, fingerprint)) = untrusted {
                eprintln!("If it is, trust it with:\n  tidings trust {server} {fingerprint}");
            }
            ExitCode::from(failure.code)
        }
    }
}

fn database(home: Option<PathBuf>) -> Result<PathBuf> {
    let home = match home {
        Some(home) => home,
        None => directories::ProjectDirs::from("", "", "tidings")
            .map(|d| d.data_dir().to_path_buf())
            .ok_or_else(|| anyhow!("no home directory; pass --home"))?,
    };
    Ok(home.join("client.db"))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let path = database(cli.home)?;
    let notify = matches!(
        cli.command,
        Command::Tail {
            no_notify: false,
            ..
        }
    );
    let notifier: Option<Arc<dyn Notifier>> =
        notify.then(|| Arc::new(DesktopNotifier::new("Tidings", None)) as Arc<dyn Notifier>);
    let options = ClientOptions {
        device: "tidings-cli".into(),
        notifier,
        transport: cli.transport,
        ..ClientOptions::default()
    };
    let client =
        Client::open(&path, options).with_context(|| format!("opening {}", path.display()))?;
    // At once: the client connects as it opens, and `tail` must not miss what that brings (the
    // first connection state, the messages synced since the last run, the session's status).
    let events = client.events();
    let result = command(&client, cli.command, events).await;
    client.shutdown();
    result
}

async fn command(
    client: &Client,
    command: Command,
    mut events: broadcast::Receiver<ClientEvent>,
) -> Result<(), Failure> {
    match command {
        Command::Login { url, user } => {
            let password = password(&format!("password for {user}: "))?;
            let me = client.login(&url, &user, &password).await?;
            println!("logged in to {url} as {}", me.name);
            Ok(())
        }
        Command::Trust { url, fingerprint } => {
            client.trust_certificate(&url, &fingerprint).await?;
            println!("trusting the certificate {fingerprint} for {url}");
            Ok(())
        }
        Command::Rooms => {
            let rooms = logged_in(client).await?;
            for room in rooms {
                println!("{}", room_line(&room));
            }
            Ok(())
        }
        Command::Send { room, text } => {
            logged_in(client).await?;
            let room = find_room(client, &room).await?;
            let text = match text.as_deref() {
                None | Some("-") => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .context("reading the message from standard input")?;
                    text.trim_end_matches('\n').to_owned()
                }
                Some(text) => text.to_owned(),
            };
            let outgoing = client.send(room.room.id, &text).await?;
            let sent = tokio::time::timeout(Duration::from_secs(15), async {
                loop {
                    match events.recv().await {
                        Ok(ClientEvent::Sent {
                            client_id,
                            message_id,
                            ..
                        }) if client_id == outgoing.client_id => return Ok(message_id),
                        Ok(ClientEvent::SendFailed {
                            client_id, error, ..
                        }) if client_id == outgoing.client_id => {
                            return Err(Failure::from(ClientError::Server(error)));
                        }
                        Ok(ClientEvent::Locked(_)) => return Err(ClientError::Locked.into()),
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => {
                            return Err(anyhow!("the client stopped").into());
                        }
                    }
                }
            })
            .await;
            match sent {
                Ok(Ok(id)) => {
                    println!("sent #{id} to {}", room_label(&room));
                    Ok(())
                }
                Ok(Err(failure)) => Err(failure),
                Err(_) => Err(Failure {
                    code: 3,
                    error: anyhow!(
                        "the server did not confirm in time; the message stays queued and is \
                         sent the next time tidings connects"
                    ),
                }),
            }
        }
        Command::History { room, limit } => {
            logged_in(client).await?;
            let room = find_room(client, &room).await?;
            let page = client.history(room.room.id, None, limit).await?;
            for message in &page.messages {
                println!("{}", message_line(message, None));
            }
            Ok(())
        }
        Command::Tail { room, .. } => {
            let rooms = logged_in(client).await?;
            let only = match room {
                Some(name) => Some(find_room(client, &name).await?.room.id),
                None => None,
            };
            let mut names: std::collections::HashMap<i64, String> =
                rooms.iter().map(|r| (r.room.id, room_label(r))).collect();
            let mut session = None;
            // Flushing after each line keeps `tidings tail | …` live.
            let mut out = std::io::stdout();
            loop {
                match events.recv().await {
                    Ok(ClientEvent::Message(message)) => {
                        if only.is_some_and(|r| r != message.room) {
                            continue;
                        }
                        let label = names.get(&message.room).cloned();
                        let _ = writeln!(out, "{}", message_line(&message, label.as_deref()));
                        let _ = out.flush();
                    }
                    Ok(ClientEvent::Rooms(rooms)) => {
                        names = rooms.iter().map(|r| (r.room.id, room_label(r))).collect();
                    }
                    Ok(ClientEvent::State(state)) => eprintln!("tidings: {}", state_line(&state)),
                    // The feed repeats the status every few seconds: say when it changes.
                    Ok(ClientEvent::Session(status)) => {
                        if session.replace(status.state) != Some(status.state) {
                            eprintln!("tidings: {}", session_line(&status));
                        }
                    }
                    Ok(ClientEvent::Locked(cause)) => {
                        return Err(Failure {
                            code: 4,
                            error: anyhow!("session locked ({cause:?}); run `tidings login` again"),
                        });
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Ok(()),
                }
            }
        }
        Command::Sessions => {
            logged_in(client).await?;
            for s in client.sessions().await? {
                let current = if s.current { "  (this one)" } else { "" };
                println!(
                    "{}\t{}\tlast seen {}{current}",
                    s.id, s.device, s.last_seen_at
                );
            }
            Ok(())
        }
        Command::Revoke { id, others } => {
            logged_in(client).await?;
            if others {
                let n = client.revoke_others().await?;
                println!("revoked {n} other session(s)");
            } else if let Some(id) = id {
                client.revoke(id).await?;
                println!("revoked session {id}");
            }
            Ok(())
        }
    }
}

/// The cached rooms after checking the client is logged in and unlocked; refreshed from the
/// server when it answers.
async fn logged_in(client: &Client) -> Result<Vec<RoomState>, Failure> {
    let account = client.account().ok_or(ClientError::NoAccount)?;
    if account.token.is_none() {
        return Err(Failure {
            code: 4,
            error: anyhow!(
                "the session for {} on {} is locked; run `tidings login` again",
                account.user.name,
                account.server
            ),
        });
    }
    match client.refresh_rooms().await {
        Ok(rooms) => Ok(rooms),
        Err(ClientError::Unreachable(_)) => Ok(client.rooms().await?),
        Err(err) => Err(err.into()),
    }
}

async fn find_room(client: &Client, name: &str) -> Result<RoomState, Failure> {
    client.find_room(name).await?.ok_or_else(|| Failure {
        code: 5,
        error: anyhow!("no room {name:?}; `tidings rooms` lists yours"),
    })
}

fn password(prompt: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt).context("reading the password");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        return Err(anyhow!("no password on standard input"));
    }
    Ok(line)
}

fn room_line(room: &RoomState) -> String {
    let mut line = format!("{}\t{}", room.room.id, room_label(room));
    if room.unread > 0 {
        line.push_str(&format!("\t{} unread", room.unread));
    }
    if room.unread_mentions > 0 {
        line.push_str(&format!(", {} mentioning you", room.unread_mentions));
    }
    line
}

fn message_line(message: &Message, room: Option<&str>) -> String {
    let body = message.body.replace('\n', "\n    ");
    match room {
        Some(room) => format!("[{room}] {}: {body}", message.author.name),
        None => format!("{}: {body}", message.author.name),
    }
}

/// A transport named as `--transport` takes it.
fn transport(name: &str) -> Result<TransportKind, String> {
    TransportKind::from_name(name)
        .filter(|kind| TransportKind::LADDER.contains(kind))
        .ok_or_else(|| {
            let names: Vec<&str> = TransportKind::LADDER.iter().map(|k| k.name()).collect();
            format!("not a transport; one of: {}", names.join(", "))
        })
}

fn state_line(state: &ConnectionState) -> String {
    match state {
        ConnectionState::Connecting => "connecting…".into(),
        ConnectionState::Online { transport } => match transport {
            TransportKind::WebSocket => "online".into(),
            other => format!("online · {}", other.label()),
        },
        ConnectionState::Offline { retry_at, attempt } => {
            let wait = retry_at - now_ms();
            format!(
                "offline; retrying in {:.1} s (attempt {attempt})",
                wait as f64 / 1000.0
            )
        }
        ConnectionState::Locked => "locked".into(),
    }
}

fn session_line(status: &SessionStatus) -> String {
    match status.state {
        SessionState::Active => "session active".into(),
        SessionState::Expiring => {
            let left = status.expires_at.min(status.idle_expires_at) - status.now;
            format!(
                "session ends in {} min; `tidings login` starts a new one",
                (left / 60_000).max(0)
            )
        }
        SessionState::Expired => "session expired".into(),
        SessionState::Revoked => "session revoked".into(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

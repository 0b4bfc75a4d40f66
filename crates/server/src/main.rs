//! `tidings-server`: the headless Tidings server and its host's commands.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tidings_server::config::{Config, LogFormat, Overrides};
use tidings_server::{Clock, account, admin, open_store};
use tidings_store::Role;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Debug, Parser)]
#[command(
    name = "tidings-server",
    version,
    about = "Self-hosted group chat with desktop alerts"
)]
struct Cli {
    /// A TOML config file (see tidings.example.toml).
    #[arg(long, global = true, env = "TIDINGS_CONFIG")]
    config: Option<PathBuf>,
    /// Where the database lives [default: tidings-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve. On a data dir with no owner yet, creates one first and prints how to log in.
    Serve {
        /// Address to listen on [default: 127.0.0.1:7878].
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Create the data dir and the owner account.
    Init {
        /// The owner's user name.
        #[arg(long, default_value = "owner")]
        owner: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print a new invite code (one use, for a week, unless told otherwise), or list or revoke
    /// invites.
    #[command(args_conflicts_with_subcommands = true)]
    Invite {
        #[command(subcommand)]
        command: Option<InviteCommand>,
        /// How many people it admits.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How many hours it lasts [default: a week].
        #[arg(long, conflicts_with = "no_expiry")]
        hours: Option<u32>,
        /// It lasts until revoked.
        #[arg(long)]
        no_expiry: bool,
    },
    /// The database's state: version, size, members, sessions, invites. (Connections and uptime
    /// are the running server's: see the admin screen, or /metrics.)
    Status,
    /// Every administrative action, newest first: who did what, to whom, when.
    Audit {
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Copy the data dir's SQLite database into an empty PostgreSQL database (the server must be
    /// stopped), so the group can move to several nodes with its history. Set `store` to the URL
    /// afterwards.
    MigrateToPostgres {
        /// The target, `postgres://user:password@host:port/database`; it must hold no users yet.
        url: String,
    },
    /// Back up the database and the attachments into one file, while the server serves (on
    /// PostgreSQL, use pg_dump).
    Backup {
        /// The backup to write (a tar archive); replaced once the new one is whole.
        file: PathBuf,
    },
    /// Restore a backup into an empty (or new) data dir, then serve it as usual.
    Restore {
        /// A backup `tidings-server backup` wrote.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a member.
    Add {
        name: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every member: role, whether disabled, live sessions, last seen.
    List,
    /// Refuse a member's logins and end their sessions.
    Disable { name: String },
    /// Let a disabled member log in again.
    Enable { name: String },
    /// Give a member a new password (printed once) and end their sessions.
    ResetPassword { name: String },
    /// Make a member an owner.
    Promote { name: String },
    /// Make an owner a member again.
    Demote { name: String },
}

#[derive(Debug, Subcommand)]
enum InviteCommand {
    /// List the latest invites, newest first.
    List,
    /// Revoke an invite by its id (from `invite list`).
    Revoke { id: i64 },
}

mod host;

/// Threads for blocking work (store reads, argon2).
const BLOCKING_THREADS: usize = 16;

/// The log on standard error, filtered by `RUST_LOG` (`info` by default), in `format`.
fn log_subscriber(format: LogFormat) -> Box<dyn tracing::Subscriber + Send + Sync> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => Box::new(log.finish()),
        LogFormat::Json => Box::new(log.json().finish()),
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen } => *listen,
        _ => None,
    };
    // The configuration says how to log; what reading it has to say goes out as text.
    let config = tracing::subscriber::with_default(log_subscriber(LogFormat::Text), || {
        Config::load(
            cli.config.as_deref(),
            Overrides {
                listen,
                data_dir: cli.data_dir.clone(),
            },
        )
    })
    .context("reading the configuration")?;
    log_subscriber(config.log_format)
        .try_init()
        .context("starting the log")?;
    // Store reads and password hashing run on the blocking pool. Capped well below tokio's
    // default of 512: a reconnect storm then queues its reads instead of starting a thread (and
    // a SQLite connection) for each one.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { .. } => serve(config).await,
            Command::Init {
                owner,
                password_stdin,
            } => {
                let password = password(password_stdin, &format!("password for {owner}: "))?;
                init(&config, &owner, &password).await
            }
            Command::User {
                command:
                    UserCommand::Add {
                        name,
                        password_stdin,
                    },
            } => {
                let password = password(password_stdin, &format!("password for {name}: "))?;
                let store = open_store(&config).await?;
                let user = account::add_user(
                    &store,
                    &name,
                    &password,
                    Role::Member,
                    Clock::System.now_ms(),
                )
                .await?;
                store.close().await;
                println!("added {}", user.name);
                Ok(())
            }
            Command::User { command } => {
                let store = open_store(&config).await?;
                let done = host::user(&store, command).await;
                store.close().await;
                done
            }
            Command::MigrateToPostgres { url } => {
                let from = config.database_path();
                if !from.exists() {
                    bail!("no database at {}", from.display());
                }
                let copied = tidings_store::copy_sqlite_to_postgres(&from, &url)
                    .await
                    .map_err(|err| match err {
                        tidings_store::StoreError::NotAllowed => {
                            anyhow::anyhow!("the PostgreSQL database already holds a group")
                        }
                        other => other.into(),
                    })?;
                println!(
                    "copied {} users, {} rooms, {} messages from {} into PostgreSQL; \
                     now set `store` to that URL",
                    copied.users,
                    copied.rooms,
                    copied.messages,
                    from.display()
                );
                Ok(())
            }
            Command::Backup { file } => {
                let done = tidings_server::backup::create(&config, &file).await?;
                println!(
                    "backed up {} into {} ({} files, {} bytes)",
                    config.data_dir.display(),
                    file.display(),
                    done.files,
                    done.bytes
                );
                if done.missing > 0 {
                    println!(
                        "{} files were deleted while the backup was made (their messages were)",
                        done.missing
                    );
                }
                Ok(())
            }
            Command::Restore { file } => {
                let done = tidings_server::backup::restore(&config, &file).await?;
                println!(
                    "restored {} into {} ({} files)",
                    file.display(),
                    config.data_dir.display(),
                    done.files
                );
                Ok(())
            }
            Command::Invite {
                command,
                uses,
                hours,
                no_expiry,
            } => {
                let store = open_store(&config).await?;
                let done = match command {
                    Some(command) => host::invites(&store, command).await,
                    None => host::invite(&store, uses, hours, no_expiry).await,
                };
                store.close().await;
                done
            }
            Command::Status => {
                let store = open_store(&config).await?;
                let done = host::status(&store).await;
                store.close().await;
                done
            }
            Command::Audit { limit } => {
                let store = open_store(&config).await?;
                let done = host::audit(&store, limit).await;
                store.close().await;
                done
            }
        }
    })
}

/// A password from standard input (`--password-stdin`) or a prompt on the terminal.
fn password(from_stdin: bool, prompt: &str) -> Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(line);
    }
    let first = rpassword::prompt_password(prompt).context("reading the password")?;
    let again = rpassword::prompt_password("again: ").context("reading the password")?;
    if first != again {
        bail!("the passwords differ");
    }
    Ok(first)
}

async fn init(config: &Config, owner: &str, password: &str) -> Result<()> {
    let store = open_store(config).await?;
    if store.has_owner().await? {
        bail!(
            "{} already has an owner; use `tidings-server user add` or `invite`",
            config.data_dir.display()
        );
    }
    let user = account::found_group(&store, owner, password, Clock::System.now_ms()).await?;
    store.close().await;
    println!(
        "created {} with owner {}",
        config.data_dir.display(),
        user.name
    );
    Ok(())
}

/// Serves; a fresh data dir first gets an owner with a generated password, printed once, so the
/// one run command ends in a server someone can log in to.
async fn serve(config: Config) -> Result<()> {
    let store = open_store(&config).await?;
    if !store.has_owner().await? {
        let password = tidings_server::account::generated_password();
        account::found_group(&store, "owner", &password, Clock::System.now_ms()).await?;
        let (_, invite) = admin::create_invite(
            &store,
            None,
            Clock::System.now_ms(),
            admin::InviteTerms::default(),
        )
        .await?;
        println!("New Tidings server in {}.", config.data_dir.display());
        println!("  Log in as:   owner");
        println!("  Password:    {password}   (shown once; keep it)");
        println!(
            "  Invite code: {}   (one use; `tidings-server invite` makes more)",
            invite.code
        );
    }
    store.close().await;
    let listener = tidings_server::listen(config.listen)
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Loaded here too, so a bad certificate is said before anything else.
    let tls = tidings_server::tls::Tls::from_config(&config)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("Tidings is listening on {scheme}://{addr}  (Ctrl-C stops it)");
    if let Some(tls) = &tls {
        println!("  Certificate SHA-256 fingerprint: {}", tls.fingerprint());
        println!("  (members compare it with what their app shows before trusting it)");
    }
    println!(
        "  Try: curl -s {scheme}://{addr}/api/login -H 'content-type: application/json' \\\n        -d '{{\"name\":\"owner\",\"password\":\"…\"}}'"
    );
    tidings_server::run(listener, config, shutdown_signal()).await?;
    Ok(())
}

/// Resolves when `signal` arrives; never when it could not be listened for.
#[cfg(unix)]
async fn received(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves on SIGINT or SIGTERM. Both are listened for from the moment this returns, before
/// the server starts: one sent as soon as the server says it serves is a graceful shutdown, not
/// the signal's default (an abrupt end).
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut interrupt, mut term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = received(interrupt.as_mut()) => {},
                _ = received(term.as_mut()) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}

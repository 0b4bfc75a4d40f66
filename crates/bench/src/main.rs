//! `tidings-bench`: benchmarks of the real `tidings-server` process over loopback — fan-out over
//! the chat channel and the feed, durable sends, history pages and feed replays — side by side
//! with peers (a naive axum + `tokio::sync::broadcast` server, Node's `ws`, and the floor: the
//! least a broadcast server can do per delivery). Prints the
//! tables on standard output and, with `--json FILE`, everything measured as JSON. See
//! BENCHMARKS.md for what each figure means.
//!
//! Shape:
//! - `suite` — the whole run: sections, rounds, the time budget, a fresh server per run;
//! - `fanout`, `persistence`, `history`, `fulltext`, `web`, `cluster` — one benchmark each
//!   (`fulltext`: search, only with `--only search`; `upload`: attachments, only with
//!   `--only upload`; `web`: the web
//!   app in Chromium, only with `--only web`; `cluster`: nodes on PostgreSQL, only with
//!   `--only cluster`);
//! - `profile` — the server's instructions per delivery under callgrind (`--only profile`);
//! - `sendpath` — the fan-out's socket writes as `writev`s against io_uring batches, without the
//!   server (`--only sendpath`);
//! - `seed` — databases written directly with SQLite before their server starts;
//! - `process` — a server as a child process, with its CPU time and memory from `/proc`;
//! - `target`, `sse`, `probe` — the clients: WebSocket connect, a small SSE client, and the
//!   timestamp each published message carries;
//! - `peer` — the naive axum server (the `naive-server` subcommand) and the Node `ws` install;
//!   `floor` — the floor (the `floor-server` subcommand);
//! - `latency`, `search`, `report` — histograms, the rate search, the tables and the JSON.

mod cluster;
mod fanout;
mod floor;
mod fulltext;
mod history;
mod latency;
mod peer;
mod persistence;
mod poll;
mod probe;
mod process;
mod profile;
mod report;
mod search;
mod seed;
mod sendpath;
mod sse;
mod suite;
mod target;
mod upload;
mod web;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::search::Criteria;
use crate::suite::{Section, Settings};
use crate::target::Target;

#[derive(Debug, Parser)]
#[command(
    name = "tidings-bench",
    version,
    about = "Benchmarks the real tidings-server: fan-out, persistence, history, and peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the naive axum + tokio::sync::broadcast peer (the benchmark starts it itself).
    NaiveServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Serve the floor peer: framed once, written by one thread per core in io_uring batches,
    /// nothing else (the benchmark starts it itself).
    FloorServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// A short smoke run: 200 and 1,000 subscribers, 100,000 history rows, one round, short steps.
    #[arg(long)]
    quick: bool,
    /// Subscriber counts of the fan-out benchmark [default: 1000,5000,10000; quick: 200,1000].
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// The Tidings transports the fan-out runs over: ws, sse, stream, poll [default: all].
    #[arg(long, value_delimiter = ',', value_parser = transport)]
    transports: Option<Vec<Target>>,
    /// Fan-out rounds per target and size; figures are medians over them [default: 3; quick: 1].
    #[arg(long)]
    rounds: Option<usize>,
    /// Messages seeded into the history room [default: 10,000,000; quick: 100,000].
    #[arg(long)]
    history_rows: Option<u64>,
    /// Messages the search benchmark searches [default: 10,000,000; quick: 100,000].
    #[arg(long)]
    search_rows: Option<u64>,
    /// Messages in the room the web app scrolls through [default: 100,000].
    #[arg(long)]
    web_rows: Option<u64>,
    /// Also write everything measured to this file, as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The tidings-server binary [default: the one beside this binary].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Run only these sections.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Option<Vec<Section>>,
    /// Leave out the peers (naive axum, Node ws, the floor).
    #[arg(long)]
    no_peers: bool,
    /// Give every Tidings subscriber a login session of its own on the WebSocket and the feed
    /// too (the HTTP streams and polls always have one each), so the transports' connect times
    /// compare like for like.
    #[arg(long)]
    own_sessions: bool,
    /// Stop starting new runs after this many minutes [default: 90; quick: 20].
    #[arg(long)]
    budget_mins: Option<f64>,
    /// Seconds each rate-search step publishes for [default: 3; quick: 2].
    #[arg(long)]
    step_secs: Option<f64>,
    /// Most steps of the search for the most delivered [default: 7; quick: 6].
    #[arg(long)]
    max_steps: Option<usize>,
    /// Most further steps of the search for the most delivered within p99 ≤ 100 ms
    /// [default: 4; quick: 3].
    #[arg(long)]
    max_latency_steps: Option<usize>,
    /// Deliveries per second (publish rate × subscribers) the rate search starts at.
    #[arg(long, default_value_t = 100_000.0)]
    search_start: f64,
    /// Subscriber handshakes in flight at once.
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Extra KEY=VALUE in the Tidings server's environment (e.g. TIDINGS_LIMITS__SEND_QUEUE=512).
    #[arg(long = "server-env", value_parser = parse_env)]
    server_env: Vec<(String, String)>,
    /// Node counts on PostgreSQL of the cluster benchmark [default: 1,2,3].
    #[arg(long, value_delimiter = ',')]
    cluster_nodes: Option<Vec<usize>>,
    /// Subscribers of the cluster benchmark's fan-out [default: 10000; quick: 1000].
    #[arg(long)]
    cluster_subscribers: Option<usize>,
    /// Subscribers of the profile (`--only profile`) [default: 1000; quick: 200].
    #[arg(long)]
    profile_subscribers: Option<usize>,
    /// Messages the profile counts the delivery of [default: 20].
    #[arg(long, default_value_t = 20)]
    profile_messages: u64,
    /// Socket pairs the send path (`--only sendpath`) writes to, two open files each
    /// [default: 5000; quick: 1000].
    #[arg(long)]
    sendpath_sockets: Option<usize>,
    /// Where the temporary data dirs go [default: the system's temporary directory].
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// The quick run's value or the full run's.
fn pick<T>(quick: bool, quick_value: T, full_value: T) -> T {
    if quick { quick_value } else { full_value }
}

/// A Tidings transport as `--transports` names it.
fn transport(name: &str) -> Result<Target, String> {
    match name.trim() {
        "ws" => Ok(Target::TidingsWs),
        "sse" => Ok(Target::TidingsSse),
        "stream" => Ok(Target::TidingsStream),
        "poll" => Ok(Target::TidingsPoll),
        other => Err(format!("{other:?}: one of ws, sse, stream, poll")),
    }
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))?;
    Ok((key.to_owned(), value.to_owned()))
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    // Built beside the client core, reqwest speaks TLS and has no crypto provider of its own:
    // its clients here (plain HTTP to loopback) still need one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    match cli.command {
        Some(Command::NaiveServer { listen }) => runtime.block_on(peer::naive_server(listen)),
        Some(Command::FloorServer { listen }) => runtime.block_on(floor::floor_server(listen)),
        None => {
            let json = cli.run.json.clone();
            let settings = settings(cli.run)?;
            let report = runtime.block_on(suite::run(settings))?;
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report)?;
                std::fs::write(&path, text + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            print!("{}", report.render());
            if !report.failures.is_empty() {
                bail!("{} part(s) of the run failed", report.failures.len());
            }
            Ok(())
        }
    }
}

/// Resolves the command line into the run's settings: quick or full defaults, then the flags.
fn settings(args: RunArgs) -> Result<Settings> {
    let quick = args.quick;
    let self_bin = std::env::current_exe().context("finding this binary")?;
    let server_bin = match args.server_bin {
        Some(path) => path,
        None => self_bin.with_file_name("tidings-server"),
    };
    if !server_bin.exists() {
        bail!(
            "no tidings-server at {}: build it (cargo build --release -p tidings-server) or \
             pass --server-bin",
            server_bin.display()
        );
    }
    let sizes = args
        .sizes
        .unwrap_or_else(|| pick(quick, vec![200, 1000], vec![1000, 5000, 10_000]));
    if sizes.contains(&0) {
        bail!("--sizes must be positive");
    }
    let cluster_nodes = args.cluster_nodes.unwrap_or_else(|| vec![1, 2, 3]);
    if cluster_nodes.is_empty() || cluster_nodes.contains(&0) {
        bail!("--cluster-nodes must be positive");
    }
    let command = std::env::args()
        .map(|a| {
            // The binary's own path says nothing about the run.
            if a.contains('/') && a.ends_with("tidings-bench") {
                "tidings-bench".to_owned()
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Settings {
        quick,
        command,
        server_bin,
        self_bin,
        work_dir: args.work_dir,
        sections: args
            .only
            .unwrap_or_else(|| vec![Section::Persistence, Section::History, Section::Fanout]),
        sizes,
        rounds: args.rounds.unwrap_or(pick(quick, 1, 3)).max(1),
        transports: args.transports.unwrap_or_else(|| {
            vec![
                Target::TidingsWs,
                Target::TidingsSse,
                Target::TidingsStream,
                Target::TidingsPoll,
            ]
        }),
        peers: !args.no_peers,
        own_sessions: args.own_sessions,
        budget_secs: args.budget_mins.unwrap_or(pick(quick, 20.0, 90.0)) * 60.0,
        server_env: args.server_env,
        fanout: fanout::Shape {
            fixed_rate: 10.0,
            fixed_secs: pick(quick, 3.0, 5.0),
            step_secs: args.step_secs.unwrap_or(pick(quick, 2.0, 3.0)),
            max_steps: args.max_steps.unwrap_or(pick(quick, 6, 7)),
            max_latency_steps: args.max_latency_steps.unwrap_or(pick(quick, 3, 4)),
            drain_secs: 2.0,
            connect_concurrency: args.connect_concurrency,
            connect_deadline_secs: 120.0,
            search_start_deliveries: args.search_start,
            criteria: Criteria::default(),
        },
        persistence: persistence::Plan {
            concurrency: vec![1, 10, 100],
            window: 32,
            secs: pick(quick, 3.0, 5.0),
            fixed_rate: 1000.0,
            fixed_senders: 10,
        },
        history: history::Plan {
            rows: args
                .history_rows
                .unwrap_or(pick(quick, 100_000, 10_000_000))
                .max(1),
            pages: pick(quick, 100, 300),
            replays: pick(quick, 10, 20),
        },
        fulltext: fulltext::Plan {
            rows: args
                .search_rows
                .unwrap_or(pick(quick, 100_000, 10_000_000))
                .max(1),
            queries: pick(quick, 50, 300),
        },
        upload: upload::Plan {
            bytes: 25 * 1024 * 1024,
            uploads: pick(quick, 3, 10),
        },
        web: web::Plan {
            rows: args.web_rows.unwrap_or(100_000).max(1),
            cold: pick(quick, 3, 5),
            warm: pick(quick, 5, 10),
            scroll_budget_secs: 600.0,
        },
        profile: profile::Plan {
            subscribers: args
                .profile_subscribers
                .unwrap_or(pick(quick, 200, 1000))
                .max(1),
            messages: args.profile_messages.max(1),
            rate: 10.0,
            top: 15,
        },
        sendpath: sendpath::Plan {
            sockets: args
                .sendpath_sockets
                .unwrap_or(pick(quick, 1000, 5000))
                .max(1),
            // A chat message's WebSocket frame in the fan-out benchmark.
            frame_bytes: 140,
            rounds: pick(quick, 20, 100),
            // One (io_uring's own cost), the fan-out's slice (hub::Sweep), every socket at once.
            batches: vec![1, 64, usize::MAX],
        },
        cluster: cluster::Plan {
            nodes: cluster_nodes,
            subscribers: args
                .cluster_subscribers
                .unwrap_or(pick(quick, 1000, 10_000))
                .max(1),
            senders: vec![1, 10, 100],
            counter_writers: vec![1, 3, 8],
            counter_batches: vec![1, 32],
            counter_secs: pick(quick, 2.0, 5.0),
        },
    })
}

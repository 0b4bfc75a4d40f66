//! The whole run: raise the open-file limit, make the template database, then persistence,
//! history and the fan-out rounds (each target in turn, the order rotating every round), each
//! against a fresh server process, all within a time budget.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::process::Command;

use crate::cluster;
use crate::fanout;
use crate::fulltext;
use crate::history;
use crate::peer;
use crate::persistence;
use crate::process::ServerProcess;
use crate::profile;
use crate::report::{Machine, Report, now_utc};
use crate::seed::{self, Seeder};
use crate::sendpath;
use crate::target::{Access, Endpoint, Target};
use crate::upload;
use crate::web;

/// Sections of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    Fanout,
    Persistence,
    History,
    /// Full-text search over millions of messages (not in the default run).
    Search,
    /// Uploads of a 25 MiB file and of an image (not in the default run).
    Upload,
    /// The web app in Chromium: start time and memory (not in the default run).
    Web,
    /// Several nodes on PostgreSQL beside one on SQLite (not in the default run).
    Cluster,
    /// The server's instructions per delivery, counted by callgrind (not in the default run).
    Profile,
    /// Socket writes as the fan-out issues them against io_uring batches (not in the default
    /// run).
    Sendpath,
}

/// Everything a run needs to know, resolved from the command line.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub quick: bool,
    pub command: String,
    #[serde(skip)]
    pub server_bin: PathBuf,
    #[serde(skip)]
    pub self_bin: PathBuf,
    #[serde(skip)]
    pub work_dir: Option<PathBuf>,
    pub sections: Vec<Section>,
    pub sizes: Vec<usize>,
    pub rounds: usize,
    /// The Tidings transports the fan-out runs over.
    pub transports: Vec<Target>,
    pub peers: bool,
    /// Every Tidings subscriber has a session of its own, on every transport.
    pub own_sessions: bool,
    pub budget_secs: f64,
    /// Extra `KEY=VALUE` for the Tidings server's environment.
    pub server_env: Vec<(String, String)>,
    pub fanout: fanout::Shape,
    pub persistence: persistence::Plan,
    pub history: history::Plan,
    pub fulltext: fulltext::Plan,
    pub upload: upload::Plan,
    pub web: web::Plan,
    pub cluster: cluster::Plan,
    pub profile: profile::Plan,
    pub sendpath: sendpath::Plan,
}

/// Files and connections besides the subscribers: listeners, the database, logs, the publisher.
const SPARE_FILES: u64 = 256;

/// Runs the suite and returns the report.
pub async fn run(mut settings: Settings) -> Result<Report> {
    let started = Instant::now();
    let budget = Duration::from_secs_f64(settings.budget_secs);
    let mut report = Report {
        date: now_utc(),
        machine: Machine::this(),
        command: settings.command.clone(),
        quick: settings.quick,
        elapsed_secs: 0.0,
        notes: vec![
            "every server runs as its own process on loopback; the load generator shares the \
             machine's cores with it"
                .to_owned(),
            "Tidings' subscribers are one user: on the WebSocket and the feed they share one \
             login session (one token for all N connections) unless --own-sessions is given, on \
             the HTTP streams and polls each has its own (a session holds one poll and two \
             streams); the publisher is \
             another user; sessions are written into the database before the server starts, \
             so no login (argon2) is timed; streams and polls start from the newest message \
             id, as a client in step has it"
                .to_owned(),
            "Tidings runs with its default limits except the per-user send rate, raised so the \
             publisher and the persistence senders are never rate-limited, and the connection \
             cap, raised above N"
                .to_owned(),
        ],
        settings: serde_json::to_value(&settings)?,
        fanout: Vec::new(),
        fanout_summary: Vec::new(),
        ratios: Vec::new(),
        persistence: None,
        history: None,
        search: None,
        upload: None,
        web: None,
        cluster: None,
        profile: Vec::new(),
        sendpath: None,
        skipped: Vec::new(),
        failures: Vec::new(),
    };
    if settings.quick {
        report.notes.push(
            "a quick smoke run: small sizes, short steps, one round; not for comparing against \
             targets"
                .to_owned(),
        );
    }

    let cluster_subscribers = if settings.sections.contains(&Section::Cluster) {
        settings.cluster.subscribers
    } else {
        0
    };
    let needed = settings
        .sizes
        .iter()
        .copied()
        .chain([cluster_subscribers])
        .max()
        .unwrap_or(0) as u64
        + SPARE_FILES;
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    tracing::info!(limit, "open-file limit");
    if limit < needed {
        let fits = limit.saturating_sub(SPARE_FILES) as usize;
        let dropped: Vec<usize> = settings
            .sizes
            .iter()
            .copied()
            .filter(|&n| n > fits)
            .collect();
        settings.sizes.retain(|&n| n <= fits);
        report.skipped.push(format!(
            "fan-out at {dropped:?} subscribers: the open-file limit is {limit}"
        ));
    }

    let work = match &settings.work_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("tidings-bench-")
            .tempdir_in(dir)?,
        None => tempfile::Builder::new()
            .prefix("tidings-bench-")
            .tempdir()?,
    };
    let template_dir = work.path().join("template");
    let server_bin = settings.server_bin.clone();
    let template_in = template_dir.clone();
    let template =
        tokio::task::spawn_blocking(move || seed::init_template(&server_bin, &template_in))
            .await??;

    let over_budget = |what: &str, report: &mut Report| {
        if started.elapsed() >= budget {
            report.skipped.push(format!(
                "{what}: the time budget ({:.0} s) ran out",
                budget.as_secs_f64()
            ));
            true
        } else {
            false
        }
    };

    if settings.sections.contains(&Section::Persistence) && !over_budget("persistence", &mut report)
    {
        match persistence_section(&settings, &template, work.path()).await {
            Ok(outcome) => report.persistence = Some(outcome),
            Err(err) => report.failures.push(format!("persistence: {err:#}")),
        }
    }

    if settings.sections.contains(&Section::History) && !over_budget("history", &mut report) {
        match history_section(&settings, &template, work.path()).await {
            Ok(outcome) => report.history = Some(outcome),
            Err(err) => report.failures.push(format!("history: {err:#}")),
        }
    }

    if settings.sections.contains(&Section::Search) && !over_budget("search", &mut report) {
        match search_section(&settings, &template, work.path()).await {
            Ok(outcome) => report.search = Some(outcome),
            Err(err) => report.failures.push(format!("search: {err:#}")),
        }
    }

    if settings.sections.contains(&Section::Upload) && !over_budget("upload", &mut report) {
        match upload_section(&settings, &template, work.path()).await {
            Ok(outcome) => report.upload = Some(outcome),
            Err(err) => report.failures.push(format!("upload: {err:#}")),
        }
    }

    if settings.sections.contains(&Section::Web) && !over_budget("web", &mut report) {
        match web_section(&settings, &template, work.path()).await {
            Ok(outcome) => report.web = Some(outcome),
            Err(err) => report.failures.push(format!("web: {err:#}")),
        }
    }

    if settings.sections.contains(&Section::Cluster) && !over_budget("cluster", &mut report) {
        match cluster::run(&settings, &template, work.path(), &mut report).await {
            Ok(outcome) => report.cluster = Some(outcome),
            Err(err) => report.failures.push(format!("cluster: {err:#}")),
        }
    }

    if settings.sections.contains(&Section::Profile) && !over_budget("profile", &mut report) {
        for &target in &settings.transports {
            let size = settings.profile.subscribers;
            match profile::run(&settings, &template, work.path(), target).await {
                Ok(outcome) => report.profile.push(outcome),
                Err(err) => report
                    .failures
                    .push(format!("profile {} × {size}: {err:#}", target.name())),
            }
        }
    }

    if settings.sections.contains(&Section::Sendpath) && !over_budget("sendpath", &mut report) {
        let plan = settings.sendpath.clone();
        match tokio::task::spawn_blocking(move || sendpath::run(&plan)).await? {
            Ok(outcome) => report.sendpath = Some(outcome),
            Err(err) => report.failures.push(format!("sendpath: {err:#}")),
        }
    }

    if settings.sections.contains(&Section::Fanout) {
        let mut targets = settings.transports.clone();
        let mut node_script: Option<PathBuf> = None;
        if settings.peers {
            targets.push(Target::NaiveAxum);
            targets.push(Target::Floor);
            match peer::install_node_ws(&work.path().join("node-ws")).await {
                Ok(script) => {
                    targets.push(Target::NodeWs);
                    node_script = Some(script);
                }
                Err(err) => report.skipped.push(format!("the Node ws peer: {err:#}")),
            }
        }
        for &size in &settings.sizes {
            for round in 0..settings.rounds {
                // Alternate: each round starts with a different target.
                let mut order = targets.clone();
                order.rotate_left(round % targets.len().max(1));
                for target in order {
                    let what = format!("fan-out {} × {size}, round {}", target.name(), round + 1);
                    if over_budget(&what, &mut report) {
                        continue;
                    }
                    tracing::info!("{what}");
                    match fanout_once(
                        &settings,
                        &template,
                        work.path(),
                        target,
                        size,
                        node_script.as_deref(),
                    )
                    .await
                    {
                        Ok(outcome) => report.fanout.push(outcome),
                        Err(err) => report.failures.push(format!("{what}: {err:#}")),
                    }
                }
            }
        }
    }

    report.elapsed_secs = started.elapsed().as_secs_f64();
    report.summarise();
    Ok(report)
}

/// Starts `tidings-server serve` on a free loopback port over `data_dir`, with `env` added to
/// its environment (e.g. the store of a cluster's node).
pub async fn start_tidings(
    settings: &Settings,
    data_dir: &Path,
    connections: usize,
    log: &Path,
    env: &[(&str, &str)],
) -> Result<ServerProcess> {
    let command = tidings_command(
        Command::new(&settings.server_bin),
        settings,
        data_dir,
        connections,
        env,
    );
    ServerProcess::spawn("tidings-server", command, log).await
}

/// `command` (the server binary, or a tool that runs it, given it as its last argument so far)
/// with the arguments and environment of `tidings-server serve` as the benchmark runs it.
pub fn tidings_command(
    mut command: Command,
    settings: &Settings,
    data_dir: &Path,
    connections: usize,
    env: &[(&str, &str)],
) -> Command {
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    // Only what the benchmark sets: no configuration leaks in from the caller's environment.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TIDINGS_") {
            command.env_remove(key);
        }
    }
    let max_connections = (connections + 1000).max(20_000);
    command
        .env("RUST_LOG", "warn")
        .env("TIDINGS_LIMITS__MESSAGES_PER_SECOND", "1000000")
        .env("TIDINGS_LIMITS__MESSAGE_BURST", "1000000")
        .env(
            "TIDINGS_LIMITS__MAX_CONNECTIONS",
            max_connections.to_string(),
        );
    for (key, value) in &settings.server_env {
        command.env(key, value);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

async fn persistence_section(
    settings: &Settings,
    template: &Path,
    work: &Path,
) -> Result<persistence::Outcome> {
    let data = work.join("persistence");
    let plan = settings.persistence.clone();
    let count = plan
        .concurrency
        .iter()
        .copied()
        .chain([plan.fixed_senders])
        .max()
        .unwrap_or(1);
    let template = template.to_owned();
    let data_in = data.clone();
    let senders = tokio::task::spawn_blocking(move || -> Result<Vec<persistence::Sender>> {
        let seeder = Seeder::copy(&template, &data_in)?;
        let senders = seeder.senders(count)?;
        seeder.finish()?;
        Ok(senders)
    })
    .await??;
    let server = start_tidings(settings, &data, count, &work.join("persistence.log"), &[]).await?;
    let outcome = persistence::run(&server, &senders, &plan).await;
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    outcome
}

async fn history_section(
    settings: &Settings,
    template: &Path,
    work: &Path,
) -> Result<history::Outcome> {
    let data = work.join("history");
    let rows = settings.history.rows;
    tracing::info!(rows, "seeding the history room");
    let template = template.to_owned();
    let data_in = data.clone();
    let seeded =
        tokio::task::spawn_blocking(move || seed::history(&template, &data_in, rows)).await??;
    tracing::info!(
        seconds = format!("{:.1}", seeded.seconds),
        "history room seeded"
    );
    let server = start_tidings(settings, &data, 16, &work.join("history.log"), &[]).await?;
    let outcome = history::run(&server, &seeded, &settings.history).await;
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    outcome
}

async fn search_section(
    settings: &Settings,
    template: &Path,
    work: &Path,
) -> Result<fulltext::Outcome> {
    let data = work.join("search");
    let rows = settings.fulltext.rows;
    tracing::info!(rows, "seeding the search corpus");
    let template = template.to_owned();
    let data_in = data.clone();
    let seeded =
        tokio::task::spawn_blocking(move || fulltext::seed(&template, &data_in, rows)).await??;
    tracing::info!(
        seconds = format!("{:.1}", seeded.seconds),
        "search corpus seeded"
    );
    let server = start_tidings(settings, &data, 16, &work.join("search.log"), &[]).await?;
    let outcome = fulltext::run(&server, &seeded, &settings.fulltext).await;
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    outcome
}

async fn upload_section(
    settings: &Settings,
    template: &Path,
    work: &Path,
) -> Result<upload::Outcome> {
    let data = work.join("upload");
    let template = template.to_owned();
    let data_in = data.clone();
    let seeded = tokio::task::spawn_blocking(move || upload::seed(&template, &data_in)).await??;
    let server = start_tidings(settings, &data, 16, &work.join("upload.log"), &[]).await?;
    let outcome = upload::run(&server, &seeded, &settings.upload).await;
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    outcome
}

async fn web_section(settings: &Settings, template: &Path, work: &Path) -> Result<web::Outcome> {
    let data = work.join("web");
    let rows = settings.web.rows;
    let template = template.to_owned();
    let data_in = data.clone();
    let seeded =
        tokio::task::spawn_blocking(move || seed::history(&template, &data_in, rows)).await??;
    let server = start_tidings(settings, &data, 16, &work.join("web.log"), &[]).await?;
    let outcome = web::run(&server, &seeded, &settings.web, work).await;
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    outcome
}

/// One fan-out run: a fresh server of `target`, `size` subscribers.
/// A data dir at `data` for a fan-out to `size` subscribers over `target`: the template, and
/// the sessions they log in with.
pub async fn seed_fanout(
    settings: &Settings,
    template: &Path,
    data: &Path,
    target: Target,
    size: usize,
) -> Result<Access> {
    let template = template.to_owned();
    let data = data.to_owned();
    let own_sessions = settings.own_sessions;
    tokio::task::spawn_blocking(move || -> Result<Access> {
        let seeder = Seeder::copy(&template, &data)?;
        let sessions = if own_sessions || target.session_per_subscriber() {
            size
        } else {
            1
        };
        let access = seeder.fanout(sessions)?;
        seeder.finish()?;
        Ok(access)
    })
    .await?
}

async fn fanout_once(
    settings: &Settings,
    template: &Path,
    work: &Path,
    target: Target,
    size: usize,
    node_script: Option<&Path>,
) -> Result<fanout::Outcome> {
    let name = format!("{}-{size}", target.name());
    let log = work.join(format!("{name}.log"));
    let data = work.join(&name);
    let (server, access) = match target {
        Target::TidingsWs | Target::TidingsSse | Target::TidingsStream | Target::TidingsPoll => {
            let access = seed_fanout(settings, template, &data, target, size).await?;
            let server = start_tidings(settings, &data, size, &log, &[]).await?;
            (server, Some(access))
        }
        Target::NaiveAxum => {
            let mut command = Command::new(&settings.self_bin);
            command.args(["naive-server", "--listen", "127.0.0.1:0"]);
            (
                ServerProcess::spawn("naive-axum", command, &log).await?,
                None,
            )
        }
        Target::Floor => {
            let mut command = Command::new(&settings.self_bin);
            command.args(["floor-server", "--listen", "127.0.0.1:0"]);
            (ServerProcess::spawn("floor", command, &log).await?, None)
        }
        Target::NodeWs => {
            let script = node_script.context("the Node peer is not installed")?;
            let mut command = Command::new("node");
            command.arg(script);
            if let Some(dir) = script.parent() {
                command.current_dir(dir);
            }
            (ServerProcess::spawn("node-ws", command, &log).await?, None)
        }
    };
    let endpoint = Endpoint {
        target,
        nodes: vec![server.addr],
        access,
    };
    let plan = settings.fanout.plan(size);
    let outcome = fanout::run(&endpoint, std::slice::from_ref(&server), &plan).await;
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&data);
    outcome
}

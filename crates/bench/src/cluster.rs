//! The cluster (`--only cluster`): several `tidings-server` nodes on one PostgreSQL database,
//! beside the single node on its SQLite file, in the same run.
//!
//! PostgreSQL is the system's, started by this benchmark on a loopback port in a temporary
//! directory of its own (with its default durability: `fsync` and `synchronous_commit` on) and
//! stopped when the run ends. Each setup gets a fresh database: the group is seeded into SQLite
//! as for every other benchmark and moved over with `tidings-server migrate-to-postgres`, the
//! command a group that grows uses, so the schema and the copy are the server's own.
//!
//! Three measurements:
//! - **the id counter**: what taking message ids from one counter row in each batch's
//!   transaction (`UPDATE log_head … RETURNING`, as the server does) costs against a plain
//!   sequence, with 1 to 8 writers committing batches of 1 and 32 rows;
//! - **durable sends**: the persistence benchmark's flat-out runs (1, 10, 100 senders) against
//!   SQLite and against 1, 2 and 3 nodes on PostgreSQL, the senders spread over the nodes;
//! - **fan-out**: N WebSocket subscribers spread over 1, 2 and 3 nodes, the publisher on the
//!   first, beside the same N on the SQLite node. CPU and memory are the nodes' sums (not
//!   PostgreSQL's).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tidings_engines::Postgres;
use tokio::process::Command;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};

use crate::fanout;
use crate::latency::{Shards, Summary};
use crate::persistence;
use crate::process::ServerProcess;
use crate::report::Report;
use crate::seed::Seeder;
use crate::suite::{Settings, start_tidings};
use crate::target::{Access, Endpoint, Target};

/// How long `migrate-to-postgres` may take for a seeded group.
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one counter transaction may take before the run is called failed.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the cluster benchmark is shaped.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Node counts on PostgreSQL (the SQLite node is always one).
    pub nodes: Vec<usize>,
    /// Subscribers of each fan-out run.
    pub subscribers: usize,
    /// Concurrent senders of each durable-sends run.
    pub senders: Vec<usize>,
    /// Concurrent writers of the counter runs, and their rows per transaction.
    pub counter_writers: Vec<usize>,
    pub counter_batches: Vec<usize>,
    pub counter_secs: f64,
}

/// Where a setup keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Store {
    Sqlite,
    Postgres,
}

/// One store and how many nodes serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Setup {
    pub store: Store,
    pub nodes: usize,
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store = match self.store {
            Store::Sqlite => "SQLite",
            Store::Postgres => "PostgreSQL",
        };
        let s = if self.nodes == 1 { "" } else { "s" };
        write!(f, "{store}, {} node{s}", self.nodes)
    }
}

/// Where message ids come from in a counter run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ids {
    /// `UPDATE head SET last_id = last_id + n RETURNING last_id` in the batch's transaction.
    Counter,
    /// A plain sequence (`bigserial`): no lock, but ids handed out before commit.
    Sequence,
}

/// One counter run.
#[derive(Debug, Clone, Serialize)]
pub struct CounterRun {
    pub ids: Ids,
    pub writers: usize,
    pub batch: usize,
    pub transactions: u64,
    pub rows_per_sec: f64,
    /// From BEGIN to the end of COMMIT.
    pub transaction: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct WritesRun {
    pub setup: Setup,
    pub run: persistence::Run,
}

#[derive(Debug, Clone, Serialize)]
pub struct FanoutRun {
    pub setup: Setup,
    pub outcome: fanout::Outcome,
}

/// Everything the cluster benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub postgres_version: String,
    pub counter: Vec<CounterRun>,
    pub writes: Vec<WritesRun>,
    pub fanout: Vec<FanoutRun>,
}

/// Runs the cluster benchmark; a setup that fails is reported in `report` and the rest go on.
pub async fn run(
    settings: &Settings,
    template: &Path,
    work: &Path,
    report: &mut Report,
) -> Result<Outcome> {
    let plan = &settings.cluster;
    let postgres = tokio::task::spawn_blocking(Postgres::start)
        .await?
        .context("starting PostgreSQL (./scripts/deps.sh --test installs it)")?;
    let postgres = Arc::new(postgres);
    let version = {
        let postgres = postgres.clone();
        tokio::task::spawn_blocking(move || postgres.psql("SHOW server_version")).await??
    };
    let mut outcome = Outcome {
        postgres_version: version,
        counter: Vec::new(),
        writes: Vec::new(),
        fanout: Vec::new(),
    };

    let url = fresh_database(&postgres).await?;
    match counter(&url, plan).await {
        Ok(runs) => outcome.counter = runs,
        Err(err) => report
            .failures
            .push(format!("cluster: the counter: {err:#}")),
    }

    let setups: Vec<Setup> = std::iter::once(Setup {
        store: Store::Sqlite,
        nodes: 1,
    })
    .chain(plan.nodes.iter().map(|&nodes| Setup {
        store: Store::Postgres,
        nodes,
    }))
    .collect();

    let ground = Ground {
        settings,
        template,
        work,
        postgres: &postgres,
    };
    for &setup in &setups {
        tracing::info!("cluster: durable sends, {setup}");
        match writes(&ground, setup).await {
            Ok(runs) => outcome.writes.extend(runs),
            Err(err) => report
                .failures
                .push(format!("cluster: durable sends, {setup}: {err:#}")),
        }
    }

    for round in 0..settings.rounds {
        let mut order = setups.clone();
        order.rotate_left(round % setups.len());
        for setup in order {
            let what = format!(
                "cluster: fan-out to {} over {setup}, round {}",
                plan.subscribers,
                round + 1
            );
            tracing::info!("{what}");
            match fanout_once(&ground, setup).await {
                Ok(run) => outcome.fanout.push(FanoutRun {
                    setup,
                    outcome: run,
                }),
                Err(err) => report.failures.push(format!("{what}: {err:#}")),
            }
        }
    }
    Ok(outcome)
}

async fn fresh_database(postgres: &Arc<Postgres>) -> Result<String> {
    let postgres = postgres.clone();
    Ok(tokio::task::spawn_blocking(move || postgres.fresh_database()).await??)
}

/// What every setup is deployed from.
#[derive(Clone, Copy)]
struct Ground<'a> {
    settings: &'a Settings,
    template: &'a Path,
    work: &'a Path,
    postgres: &'a Arc<Postgres>,
}

/// The nodes of a setup, running over a group seeded by `seed`.
struct Deployed<T> {
    nodes: Vec<ServerProcess>,
    seeded: T,
    data: PathBuf,
}

impl<T> Deployed<T> {
    async fn stop(self) -> Result<()> {
        for node in self.nodes {
            node.stop().await?;
        }
        let _ = std::fs::remove_dir_all(&self.data);
        Ok(())
    }
}

/// Seeds a group into SQLite with `seed`, moves it into a fresh PostgreSQL database when the
/// setup says so, and starts the setup's nodes (sharing the data dir, as nodes on one database
/// may).
async fn deploy<T: Send + 'static>(
    ground: &Ground<'_>,
    setup: Setup,
    name: &str,
    connections: usize,
    seed: impl FnOnce(&Seeder) -> Result<T> + Send + 'static,
) -> Result<Deployed<T>> {
    let Ground {
        settings,
        template,
        work,
        postgres,
    } = *ground;
    let data = work.join(name);
    let template = template.to_owned();
    let data_in = data.clone();
    let seeded = tokio::task::spawn_blocking(move || -> Result<T> {
        let seeder = Seeder::copy(&template, &data_in)?;
        let seeded = seed(&seeder)?;
        seeder.finish()?;
        Ok(seeded)
    })
    .await??;
    let url = match setup.store {
        Store::Sqlite => None,
        Store::Postgres => {
            let url = fresh_database(postgres).await?;
            migrate(
                settings,
                &data,
                &url,
                &work.join(format!("{name}-migrate.log")),
            )
            .await?;
            Some(url)
        }
    };
    let env: Vec<(&str, &str)> = url
        .as_deref()
        .map(|url| ("TIDINGS_STORE", url))
        .into_iter()
        .collect();
    let mut nodes = Vec::with_capacity(setup.nodes);
    for node in 0..setup.nodes {
        let log = work.join(format!("{name}-node{node}.log"));
        // Each node holds about its share of the connections.
        let share = connections.div_ceil(setup.nodes);
        nodes.push(start_tidings(settings, &data, share, &log, &env).await?);
    }
    Ok(Deployed {
        nodes,
        seeded,
        data,
    })
}

/// `tidings-server migrate-to-postgres URL` over `data`.
async fn migrate(settings: &Settings, data: &Path, url: &str, log: &Path) -> Result<()> {
    let mut command = Command::new(&settings.server_bin);
    command
        .arg("--data-dir")
        .arg(data)
        .args(["migrate-to-postgres", url])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TIDINGS_") {
            command.env_remove(key);
        }
    }
    let output = timeout(MIGRATE_TIMEOUT, command.output())
        .await
        .context("migrate-to-postgres took too long")??;
    std::fs::write(log, [&output.stdout[..], &output.stderr[..]].concat())?;
    if !output.status.success() {
        bail!(
            "migrate-to-postgres failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The persistence benchmark's flat-out runs against one setup.
async fn writes(ground: &Ground<'_>, setup: Setup) -> Result<Vec<WritesRun>> {
    let settings = ground.settings;
    let plan = &settings.cluster;
    let count = plan.senders.iter().copied().max().unwrap_or(1);
    let name = format!("cluster-writes-{:?}-{}", setup.store, setup.nodes).to_lowercase();
    let deployed = deploy(ground, setup, &name, count, move |seeder| {
        seeder.senders(count)
    })
    .await?;
    let mut runs = Vec::new();
    let mut failed = None;
    for &senders in &plan.senders {
        let senders = &deployed.seeded[..senders.min(deployed.seeded.len())];
        match persistence::one(&deployed.nodes, senders, &settings.persistence, None).await {
            Ok(run) => runs.push(WritesRun { setup, run }),
            Err(err) => {
                failed = Some(err);
                break;
            }
        }
    }
    deployed.stop().await?;
    match failed {
        Some(err) => Err(err),
        None => Ok(runs),
    }
}

/// One fan-out run over a fresh deployment of `setup`, WebSocket subscribers.
async fn fanout_once(ground: &Ground<'_>, setup: Setup) -> Result<fanout::Outcome> {
    let settings = ground.settings;
    let subscribers = settings.cluster.subscribers;
    let own_sessions = settings.own_sessions;
    let name = format!("cluster-fanout-{:?}-{}", setup.store, setup.nodes).to_lowercase();
    let deployed = deploy(ground, setup, &name, subscribers, move |seeder| {
        seeder.fanout(if own_sessions { subscribers } else { 1 })
    })
    .await?;
    let endpoint = Endpoint {
        target: Target::TidingsWs,
        nodes: deployed.nodes.iter().map(|node| node.addr).collect(),
        access: Some::<Access>(deployed.seeded.clone()),
    };
    let plan = settings.fanout.plan(subscribers);
    let outcome = fanout::run(&endpoint, &deployed.nodes, &plan).await;
    deployed.stop().await?;
    outcome
}

/// The counter against the sequence, on a database of their own.
async fn counter(url: &str, plan: &Plan) -> Result<Vec<CounterRun>> {
    let admin = open(url).await?;
    admin
        .batch_execute(
            "CREATE TABLE bench_head (id int PRIMARY KEY, last_id bigint NOT NULL);
             CREATE TABLE bench_counter (id bigint PRIMARY KEY, writer int NOT NULL,
                                         body text NOT NULL);
             CREATE TABLE bench_sequence (id bigserial PRIMARY KEY, writer int NOT NULL,
                                          body text NOT NULL);",
        )
        .await?;
    let mut runs = Vec::new();
    for &batch in &plan.counter_batches {
        for &writers in &plan.counter_writers {
            for ids in [Ids::Counter, Ids::Sequence] {
                admin
                    .batch_execute(
                        "TRUNCATE bench_head, bench_counter, bench_sequence;
                         INSERT INTO bench_head VALUES (1, 0);",
                    )
                    .await?;
                let run = counter_run(url, ids, writers, batch, plan.counter_secs).await?;
                if ids == Ids::Counter {
                    // The counter's promise: ids without a gap, one per row committed.
                    let row = admin
                        .query_one(
                            "SELECT count(*), coalesce(max(id), 0) FROM bench_counter",
                            &[],
                        )
                        .await?;
                    let (rows, last): (i64, i64) = (row.get(0), row.get(1));
                    let committed = i64::try_from(run.transactions * batch as u64)?;
                    if rows != last || rows != committed {
                        bail!(
                            "the counter's ids have gaps: {rows} rows, last id {last}, \
                             {committed} committed"
                        );
                    }
                }
                tracing::info!(
                    ?ids,
                    writers,
                    batch,
                    rows_per_sec = format!("{:.0}", run.rows_per_sec),
                    p99_ms = run.transaction.p99_ms,
                    "counter run"
                );
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

async fn open(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("connecting to PostgreSQL")?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "a benchmark connection to PostgreSQL ended");
        }
    });
    Ok(client)
}

async fn counter_run(
    url: &str,
    ids: Ids,
    writers: usize,
    batch: usize,
    secs: f64,
) -> Result<CounterRun> {
    let latencies = Arc::new(Shards::new(writers));
    let mut clients = Vec::with_capacity(writers);
    for _ in 0..writers {
        clients.push(open(url).await?);
    }
    let started = Instant::now();
    let stop_at = started + Duration::from_secs_f64(secs);
    let mut tasks = JoinSet::new();
    for (writer, mut client) in clients.into_iter().enumerate() {
        let latencies = latencies.clone();
        tasks.spawn(async move {
            let mut transactions = 0u64;
            let batch = i64::try_from(batch)?;
            let writer = i32::try_from(writer)?;
            while Instant::now() < stop_at {
                let began = Instant::now();
                timeout(COMMIT_TIMEOUT, async {
                    let tx = client.transaction().await?;
                    match ids {
                        Ids::Counter => {
                            let last: i64 = tx
                                .query_one(
                                    "UPDATE bench_head SET last_id = last_id + $1 \
                                     WHERE id = 1 RETURNING last_id",
                                    &[&batch],
                                )
                                .await?
                                .get(0);
                            tx.execute(
                                "INSERT INTO bench_counter (id, writer, body) \
                                 SELECT g, $3, 'message ' || g \
                                 FROM generate_series($1::bigint, $2::bigint) g",
                                &[&(last - batch + 1), &last, &writer],
                            )
                            .await?;
                        }
                        Ids::Sequence => {
                            tx.execute(
                                "INSERT INTO bench_sequence (writer, body) \
                                 SELECT $2, 'message ' || g FROM generate_series(1, $1::bigint) g",
                                &[&batch, &writer],
                            )
                            .await?;
                        }
                    }
                    tx.commit().await?;
                    anyhow::Ok(())
                })
                .await
                .context("a transaction took too long")??;
                let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                latencies.record(usize::try_from(writer)?, micros);
                transactions += 1;
            }
            anyhow::Ok(transactions)
        });
    }
    let mut transactions = 0;
    while let Some(joined) = tasks.join_next().await {
        transactions += joined.context("a writer panicked")??;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(CounterRun {
        ids,
        writers,
        batch,
        transactions,
        rows_per_sec: (transactions * batch as u64) as f64 / seconds.max(1e-9),
        transaction: Summary::of(&latencies.merged()),
    })
}

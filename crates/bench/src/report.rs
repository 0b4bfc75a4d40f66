//! The report: everything measured, as JSON, and the tables printed at the end — medians over the
//! rounds, and Tidings' figures as ratios to each peer's.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::cluster;
use crate::fanout;
use crate::fulltext;
use crate::history;
use crate::latency::median;
use crate::persistence;
use crate::profile;
use crate::sendpath;
use crate::target::Target;
use crate::upload;
use crate::web;

/// Where the figures were taken.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
}

impl Machine {
    pub fn this() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
        }
    }
}

/// The medians of one target at one size over its rounds.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutSummary {
    pub target: Target,
    pub subscribers: usize,
    pub rounds: usize,
    pub connect_secs: f64,
    pub idle_kib_per_connection: f64,
    /// At the fixed rate (10 messages/s).
    pub fixed_p50_ms: f64,
    pub fixed_p99_ms: f64,
    pub fixed_max_ms: f64,
    pub fixed_delivery_ratio: f64,
    /// Bytes on a subscriber's connection per message delivered, at the fixed rate.
    pub fixed_wire_bytes_per_delivery: f64,
    /// The highest publish rate passing the criteria (0 when none did).
    pub best_rate: f64,
    /// Whether, in some round, the search ran out of steps before any rate failed: the true
    /// maximum is then higher than measured.
    pub best_rate_is_lower_bound: bool,
    pub best_delivered_per_sec: f64,
    pub best_p50_ms: f64,
    pub best_p99_ms: f64,
    pub best_max_ms: f64,
    pub best_server_cpu_pct: f64,
    /// The most delivered per second at a sustained rate (≥ 99 % delivered), whatever the
    /// latency; 0 when no rate was sustained.
    pub max_delivered_per_sec: f64,
    /// Whether, in some round, no rate above the sustained one failed.
    pub max_delivered_is_lower_bound: bool,
    pub max_delivered_rate: f64,
    pub max_delivered_p99_ms: f64,
    pub max_delivered_server_cpu_pct: f64,
    pub peak_delivered_per_sec: f64,
}

impl FanoutSummary {
    /// Medians over `rounds` (all of one target and size). None for no rounds.
    pub fn of(rounds: &[&fanout::Outcome]) -> Option<FanoutSummary> {
        let first = rounds.first()?;
        let m = |f: &dyn Fn(&fanout::Outcome) -> f64| {
            median(&rounds.iter().map(|o| f(o)).collect::<Vec<_>>()).unwrap_or(0.0)
        };
        let best = |f: &dyn Fn(&fanout::Step) -> f64| {
            m(&|o: &fanout::Outcome| o.best.as_ref().map_or(0.0, f))
        };
        let sustained = |f: &dyn Fn(&fanout::Step) -> f64| {
            m(&|o: &fanout::Outcome| o.sustained.as_ref().map_or(0.0, f))
        };
        Some(FanoutSummary {
            target: first.target,
            subscribers: first.subscribers,
            rounds: rounds.len(),
            connect_secs: m(&|o| o.connect_secs),
            idle_kib_per_connection: m(&|o| o.idle_bytes_per_connection / 1024.0),
            fixed_p50_ms: m(&|o| o.fixed.latency.p50_ms),
            fixed_p99_ms: m(&|o| o.fixed.latency.p99_ms),
            fixed_max_ms: m(&|o| o.fixed.latency.max_ms),
            fixed_delivery_ratio: m(&|o| o.fixed.delivery_ratio),
            fixed_wire_bytes_per_delivery: m(&|o| o.fixed.wire_bytes_per_delivery),
            best_rate: best(&|s| s.rate),
            best_rate_is_lower_bound: rounds.iter().any(|o| !o.best_is_bounded),
            best_delivered_per_sec: best(&|s| s.delivered_per_sec),
            best_p50_ms: best(&|s| s.latency.p50_ms),
            best_p99_ms: best(&|s| s.latency.p99_ms),
            best_max_ms: best(&|s| s.latency.max_ms),
            best_server_cpu_pct: best(&|s| s.server_cpu_pct),
            max_delivered_per_sec: sustained(&|s| s.delivered_per_sec),
            max_delivered_is_lower_bound: rounds.iter().any(|o| !o.sustained_is_bounded),
            max_delivered_rate: sustained(&|s| s.rate),
            max_delivered_p99_ms: sustained(&|s| s.latency.p99_ms),
            max_delivered_server_cpu_pct: sustained(&|s| s.server_cpu_pct),
            peak_delivered_per_sec: m(&|o| o.peak_delivered_per_sec),
        })
    }
}

/// One figure of Tidings divided by the same figure of another target.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub subscribers: usize,
    pub tidings: Target,
    pub versus: Target,
    /// Most delivered/s at a sustained rate: above 1 is Tidings faster.
    pub delivered_per_sec: Option<f64>,
    /// Most delivered/s within p99 ≤ 100 ms: above 1 is Tidings faster.
    pub delivered_within_bound: Option<f64>,
    /// p99 at the fixed rate: below 1 is Tidings quicker.
    pub fixed_p99: Option<f64>,
    /// Memory per idle connection: below 1 is Tidings leaner.
    pub idle_memory: Option<f64>,
    /// Time to connect every subscriber: below 1 is Tidings quicker.
    pub connect_time: Option<f64>,
}

impl Ratio {
    pub fn between(tidings: &FanoutSummary, versus: &FanoutSummary) -> Ratio {
        Ratio {
            subscribers: tidings.subscribers,
            tidings: tidings.target,
            versus: versus.target,
            delivered_per_sec: ratio(tidings.max_delivered_per_sec, versus.max_delivered_per_sec),
            delivered_within_bound: ratio(
                tidings.best_delivered_per_sec,
                versus.best_delivered_per_sec,
            ),
            fixed_p99: ratio(tidings.fixed_p99_ms, versus.fixed_p99_ms),
            idle_memory: ratio(
                tidings.idle_kib_per_connection,
                versus.idle_kib_per_connection,
            ),
            connect_time: ratio(tidings.connect_secs, versus.connect_secs),
        }
    }
}

/// `a / b`, or None when `b` is not a positive number.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub command: String,
    pub quick: bool,
    pub elapsed_secs: f64,
    /// What the reader needs to know to read the figures right.
    pub notes: Vec<String>,
    pub settings: serde_json::Value,
    pub fanout: Vec<fanout::Outcome>,
    pub fanout_summary: Vec<FanoutSummary>,
    pub ratios: Vec<Ratio>,
    pub persistence: Option<persistence::Outcome>,
    pub history: Option<history::Outcome>,
    pub search: Option<fulltext::Outcome>,
    pub upload: Option<upload::Outcome>,
    pub web: Option<web::Outcome>,
    pub cluster: Option<cluster::Outcome>,
    /// `--only profile`: instructions per delivery.
    pub profile: Vec<profile::Outcome>,
    /// `--only sendpath`: socket writes one by one against io_uring batches.
    pub sendpath: Option<sendpath::Outcome>,
    /// Parts that did not run, and why.
    pub skipped: Vec<String>,
    /// Parts that failed, with the error.
    pub failures: Vec<String>,
}

impl Report {
    /// Fills in the medians and ratios from the raw fan-out outcomes.
    pub fn summarise(&mut self) {
        let mut keys: Vec<(usize, Target)> = Vec::new();
        for o in &self.fanout {
            if !keys.contains(&(o.subscribers, o.target)) {
                keys.push((o.subscribers, o.target));
            }
        }
        keys.sort_by_key(|(n, t)| (*n, order(*t)));
        self.fanout_summary = keys
            .iter()
            .filter_map(|(n, t)| {
                let rounds: Vec<&fanout::Outcome> = self
                    .fanout
                    .iter()
                    .filter(|o| o.subscribers == *n && o.target == *t)
                    .collect();
                FanoutSummary::of(&rounds)
            })
            .collect();
        let find = |n: usize, t: Target| {
            self.fanout_summary
                .iter()
                .find(|s| s.subscribers == n && s.target == t)
        };
        let mut sizes: Vec<usize> = keys.iter().map(|(n, _)| *n).collect();
        sizes.dedup();
        self.ratios = sizes
            .iter()
            .flat_map(|&n| {
                [
                    (Target::TidingsWs, Target::NaiveAxum),
                    (Target::TidingsWs, Target::NodeWs),
                    (Target::TidingsWs, Target::Floor),
                    (Target::TidingsSse, Target::TidingsWs),
                    (Target::TidingsStream, Target::TidingsSse),
                    (Target::TidingsPoll, Target::TidingsWs),
                ]
                .into_iter()
                .filter_map(move |(a, b)| Some(Ratio::between(find(n, a)?, find(n, b)?)))
            })
            .collect();
    }

    /// The tables, as printed at the end of a run.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let kind = if self.quick {
            "quick smoke run"
        } else {
            "full run"
        };
        let _ = writeln!(
            out,
            "Tidings benchmarks — {kind}, {} — {} cores, {} — took {}",
            self.date,
            self.machine.cores,
            self.machine.cpu_model,
            duration(self.elapsed_secs)
        );
        let _ = writeln!(out, "command: {}", self.command);
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }

        if !self.fanout_summary.is_empty() {
            let _ = writeln!(
                out,
                "\nFan-out: one room, one publisher (medians over rounds; 'max deliv/s' = most \
                 delivered per second at a rate with ≥ 99 % delivered, whatever the latency; \
                 '≤100ms rate' = highest publish rate with ≥ 99 % delivered and p99 ≤ 100 ms; \
                 '≥' where no higher rate was tried and failed)"
            );
            let mut rows = vec![fanout_header("target")];
            for s in &self.fanout_summary {
                rows.push(fanout_row(s.target.name(), s));
            }
            out.push_str(&table(&rows));
        }

        if !self.ratios.is_empty() {
            let _ = writeln!(
                out,
                "\nRatios (first ÷ second; delivered/s: higher is better; the others: lower is \
                 better)"
            );
            let mut rows = vec![vec![
                "N".to_owned(),
                "compared".to_owned(),
                "max deliv/s".to_owned(),
                "≤100ms deliv/s".to_owned(),
                "p99 @10/s".to_owned(),
                "idle memory".to_owned(),
                "connect time".to_owned(),
            ]];
            for r in &self.ratios {
                rows.push(vec![
                    r.subscribers.to_string(),
                    format!("{} ÷ {}", r.tidings.name(), r.versus.name()),
                    times(r.delivered_per_sec),
                    times(r.delivered_within_bound),
                    times(r.fixed_p99),
                    times(r.idle_memory),
                    times(r.connect_time),
                ]);
            }
            out.push_str(&table(&rows));
        }

        if let Some(p) = &self.persistence {
            let _ = writeln!(
                out,
                "\nPersistence: sends acknowledged after commit (WebSocket, pipelined)"
            );
            let mut rows = vec![vec![
                "senders".to_owned(),
                "window".to_owned(),
                "rate".to_owned(),
                "acked/s".to_owned(),
                "send→ack p50".to_owned(),
                "p99".to_owned(),
                "max".to_owned(),
                "errors".to_owned(),
                "server CPU".to_owned(),
            ]];
            for run in p.runs.iter().chain(std::iter::once(&p.fixed)) {
                rows.push(vec![
                    run.senders.to_string(),
                    run.window.to_string(),
                    run.rate
                        .map_or("flat out".to_owned(), |r| format!("{}/s", count(r))),
                    count(run.acked_per_sec),
                    ms(run.latency.p50_ms),
                    ms(run.latency.p99_ms),
                    ms(run.latency.max_ms),
                    run.errors.to_string(),
                    format!("{:.0} %", run.server_cpu_pct),
                ]);
            }
            out.push_str(&table(&rows));
        }

        if let Some(h) = &self.history {
            let _ = writeln!(
                out,
                "\nHistory: a room of {} messages (seeded in {:.1} s, {}/s, database {:.0} MiB)",
                count(h.rows as f64),
                h.seed_secs,
                count(h.seed_rows_per_sec),
                h.database_bytes as f64 / (1024.0 * 1024.0)
            );
            let rows = vec![
                vec![
                    "query".to_owned(),
                    "samples".to_owned(),
                    "median".to_owned(),
                    "p99".to_owned(),
                    "max".to_owned(),
                ],
                summary_row("page of 50, newest", &h.page_newest),
                summary_row("page of 50, middle", &h.page_middle),
                summary_row(
                    &format!("Last-Event-ID replay of {}", h.replay_events),
                    &h.replay,
                ),
            ];
            out.push_str(&table(&rows));
        }

        if let Some(s) = &self.search {
            let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
            let _ = writeln!(
                out,
                "\nSearch: {} messages of made-up text in {} rooms (seeded and indexed in {:.1} s, \
                 {}/s); database {:.0} MiB, of which the messages {:.0} MiB and the full-text \
                 index {:.0} MiB",
                count(s.rows as f64),
                s.rooms,
                s.seed_secs,
                count(s.seed_rows_per_sec),
                mib(s.database_bytes),
                mib(s.messages_bytes),
                mib(s.index_bytes),
            );
            let mut rows = vec![vec![
                "one-word query, newest 20 hits".to_owned(),
                "reader".to_owned(),
                "hits".to_owned(),
                "samples".to_owned(),
                "median".to_owned(),
                "p99".to_owned(),
                "max".to_owned(),
            ]];
            for q in &s.queries {
                rows.push(vec![
                    q.kind.clone(),
                    q.reader.clone(),
                    format!("{:.1}", q.mean_hits),
                    q.latency.count.to_string(),
                    ms(q.latency.p50_ms),
                    ms(q.latency.p99_ms),
                    ms(q.latency.max_ms),
                ]);
            }
            out.push_str(&table(&rows));
        }

        if let Some(u) = &self.upload {
            let _ = writeln!(
                out,
                "\nUploads over loopback: a {:.0} MiB file at {:.0} MB/s (median)",
                u.bytes as f64 / (1024.0 * 1024.0),
                u.file_mb_per_sec
            );
            let rows = vec![
                vec![
                    "upload, request → 201".to_owned(),
                    "samples".to_owned(),
                    "median".to_owned(),
                    "p99".to_owned(),
                    "max".to_owned(),
                ],
                summary_row(
                    &format!("{:.0} MiB file", u.bytes as f64 / (1024.0 * 1024.0)),
                    &u.file,
                ),
                summary_row(
                    &format!(
                        "4000×3000 PNG ({:.1} MiB), thumbnailed",
                        u.image_bytes as f64 / (1024.0 * 1024.0)
                    ),
                    &u.image,
                ),
            ];
            out.push_str(&table(&rows));
        }

        if let Some(w) = &self.web {
            let mib = |bytes: u64| format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0));
            let _ = writeln!(
                out,
                "\nThe web app in Chromium (headless), a room of {} messages",
                count(w.rows as f64)
            );
            let stat = |name: &str, samples: &[f64]| {
                vec![
                    name.to_owned(),
                    samples.len().to_string(),
                    ms(median(samples).unwrap_or(0.0)),
                    ms(samples.iter().copied().fold(0.0, f64::max)),
                ]
            };
            let rows = vec![
                vec![
                    "open the URL → usable chat".to_owned(),
                    "samples".to_owned(),
                    "median".to_owned(),
                    "max".to_owned(),
                ],
                stat("cold (empty cache)", &w.cold_ms),
                stat("warm (assets cached)", &w.warm_ms),
            ];
            out.push_str(&table(&rows));
            let _ = writeln!(
                out,
                "JS heap: {} with the newest page, {} after scrolling to the first message ({:.0} s); \
                 at most {} elements in the document and {} message rows drawn",
                mib(w.heap_start_bytes),
                mib(w.heap_scrolled_bytes),
                w.scroll_secs,
                w.dom_elements_max,
                w.rows_drawn_max
            );
        }

        for p in &self.profile {
            render_profile(&mut out, p);
        }
        if let Some(s) = &self.sendpath {
            render_sendpath(&mut out, s);
        }
        if let Some(c) = &self.cluster {
            render_cluster(&mut out, c);
        }

        for skipped in &self.skipped {
            let _ = writeln!(out, "skipped: {skipped}");
        }
        for failure in &self.failures {
            let _ = writeln!(out, "FAILED: {failure}");
        }
        out
    }
}

/// The head of a fan-out table, its first column named `first`.
fn fanout_header(first: &str) -> Vec<String> {
    [
        first,
        "N",
        "rounds",
        "connect",
        "idle/conn",
        "@10/s p50",
        "p99",
        "max",
        "bytes/msg",
        "max deliv/s",
        "at rate",
        "p99",
        "CPU",
        "≤100ms rate",
        "deliv/s",
        "p99",
        "CPU",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// One row of a fan-out table: `name`, then `s`'s figures under [`fanout_header`].
fn fanout_row(name: &str, s: &FanoutSummary) -> Vec<String> {
    let at_least = |lower_bound: bool| if lower_bound { "≥ " } else { "" };
    let none = || {
        vec![
            "none".to_owned(),
            String::new(),
            String::new(),
            String::new(),
        ]
    };
    let mut row = vec![
        name.to_owned(),
        s.subscribers.to_string(),
        s.rounds.to_string(),
        format!("{:.2} s", s.connect_secs),
        format!("{:.1} KiB", s.idle_kib_per_connection),
        ms(s.fixed_p50_ms),
        ms(s.fixed_p99_ms),
        ms(s.fixed_max_ms),
        format!("{:.0}", s.fixed_wire_bytes_per_delivery),
    ];
    if s.max_delivered_per_sec > 0.0 {
        row.extend([
            format!(
                "{}{}",
                at_least(s.max_delivered_is_lower_bound),
                count(s.max_delivered_per_sec)
            ),
            format!("{}/s", count(s.max_delivered_rate)),
            ms(s.max_delivered_p99_ms),
            format!("{:.0} %", s.max_delivered_server_cpu_pct),
        ]);
    } else {
        row.extend(none());
    }
    if s.max_delivered_per_sec > 0.0 && s.best_rate > 0.0 {
        row.extend([
            format!(
                "{}{}/s",
                at_least(s.best_rate_is_lower_bound),
                count(s.best_rate)
            ),
            count(s.best_delivered_per_sec),
            ms(s.best_p99_ms),
            format!("{:.0} %", s.best_server_cpu_pct),
        ]);
    } else {
        row.extend(none());
    }
    row
}

/// One profile: the figure, then where the instructions went.
fn render_profile(out: &mut String, p: &profile::Outcome) {
    let _ = writeln!(
        out,
        "\nProfile: {} × {} subscribers ({} connected), {} messages, {} deliveries, counted by callgrind (user space only)",
        p.target.name(),
        p.subscribers,
        p.connected,
        p.published,
        p.deliveries
    );
    let _ = writeln!(
        out,
        "instructions per delivery: {:.0}   (total {})",
        p.instructions_per_delivery, p.instructions
    );
    for spent in &p.top {
        let _ = writeln!(
            out,
            "  {:>6.2}%  {:>12}  {}",
            spent.percent, spent.instructions, spent.function
        );
    }
}

/// The send path's ways, each against the server's.
fn render_sendpath(out: &mut String, s: &sendpath::Outcome) {
    let _ = writeln!(
        out,
        "\nSend path: one {}-byte write to each of {} loopback sockets, {} rounds per way \
         (medians; CPU = the whole process's; readers not waiting)",
        s.frame_bytes, s.sockets, s.rounds
    );
    let mut rows = vec![vec![
        "way".to_owned(),
        "writes/call".to_owned(),
        "wall/write".to_owned(),
        "CPU/write".to_owned(),
        "CPU ÷ writev's".to_owned(),
        "not taken".to_owned(),
    ]];
    let base = s.ways.first().map_or(0.0, |w| w.cpu_ns);
    for w in &s.ways {
        rows.push(vec![
            w.name.clone(),
            w.per_call.to_string(),
            format!("{:.0} ns", w.wall_ns),
            format!("{:.0} ns", w.cpu_ns),
            ratio(w.cpu_ns, base).map_or("-".to_owned(), |r| format!("{r:.2}×")),
            w.not_taken.to_string(),
        ]);
    }
    out.push_str(&table(&rows));
}

/// The cluster benchmark's three tables.
fn render_cluster(out: &mut String, c: &cluster::Outcome) {
    let _ = writeln!(
        out,
        "\nCluster: message ids from one counter row in each batch's transaction, against a \
         plain sequence (PostgreSQL {}, each writer its own connection, flat out)",
        c.postgres_version
    );
    let mut rows = vec![vec![
        "ids".to_owned(),
        "writers".to_owned(),
        "rows/tx".to_owned(),
        "rows/s".to_owned(),
        "tx p50".to_owned(),
        "p99".to_owned(),
        "max".to_owned(),
    ]];
    for run in &c.counter {
        rows.push(vec![
            format!("{:?}", run.ids).to_lowercase(),
            run.writers.to_string(),
            run.batch.to_string(),
            count(run.rows_per_sec),
            ms(run.transaction.p50_ms),
            ms(run.transaction.p99_ms),
            ms(run.transaction.max_ms),
        ]);
    }
    out.push_str(&table(&rows));

    let _ = writeln!(
        out,
        "\nCluster: durable sends (acked after commit; the senders spread over the nodes; CPU is \
         the nodes' sum, PostgreSQL's not counted)"
    );
    let mut rows = vec![vec![
        "store".to_owned(),
        "senders".to_owned(),
        "acked/s".to_owned(),
        "send→ack p50".to_owned(),
        "p99".to_owned(),
        "max".to_owned(),
        "errors".to_owned(),
        "nodes' CPU".to_owned(),
    ]];
    for w in &c.writes {
        rows.push(vec![
            w.setup.to_string(),
            w.run.senders.to_string(),
            count(w.run.acked_per_sec),
            ms(w.run.latency.p50_ms),
            ms(w.run.latency.p99_ms),
            ms(w.run.latency.max_ms),
            w.run.errors.to_string(),
            format!("{:.0} %", w.run.server_cpu_pct),
        ]);
    }
    out.push_str(&table(&rows));

    let mut setups: Vec<cluster::Setup> = Vec::new();
    for run in &c.fanout {
        if !setups.contains(&run.setup) {
            setups.push(run.setup);
        }
    }
    if setups.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nCluster: fan-out over WebSocket, the subscribers spread over the nodes, the publisher \
         on the first (medians over rounds; memory and CPU are the nodes' sums)"
    );
    let mut rows = vec![fanout_header("store")];
    for setup in setups {
        let rounds: Vec<&fanout::Outcome> = c
            .fanout
            .iter()
            .filter(|run| run.setup == setup)
            .map(|run| &run.outcome)
            .collect();
        if let Some(s) = FanoutSummary::of(&rounds) {
            rows.push(fanout_row(&setup.to_string(), &s));
        }
    }
    out.push_str(&table(&rows));
}

fn order(target: Target) -> u8 {
    match target {
        Target::TidingsWs => 0,
        Target::TidingsSse => 1,
        Target::TidingsStream => 2,
        Target::TidingsPoll => 3,
        Target::NaiveAxum => 4,
        Target::NodeWs => 5,
        Target::Floor => 6,
    }
}

fn summary_row(name: &str, s: &crate::latency::Summary) -> Vec<String> {
    vec![
        name.to_owned(),
        s.count.to_string(),
        ms(s.p50_ms),
        ms(s.p99_ms),
        ms(s.max_ms),
    ]
}

/// Columns padded to their widest cell; numbers are right-aligned, the first column left.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str("  ");
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0} ms")
    } else if value >= 10.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.2} ms")
    }
}

fn times(value: Option<f64>) -> String {
    value.map_or("n/a".to_owned(), |v| format!("{v:.2}×"))
}

/// A count with thousands separators; fractions kept below ten.
pub fn count(value: f64) -> String {
    if value < 10.0 && value.fract() != 0.0 {
        return format!("{value:.2}");
    }
    let whole = value.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `1h 02m 03s`, `4m 05s` or `6.7 s`.
pub fn duration(secs: f64) -> String {
    let whole = secs.round() as u64;
    match whole {
        0..60 => format!("{secs:.1} s"),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        _ => format!(
            "{}h {:02}m {:02}s",
            whole / 3600,
            (whole % 3600) / 60,
            whole % 60
        ),
    }
}

/// Today's date and time in UTC, `YYYY-MM-DD HH:MM UTC`.
pub fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (y, m, d) = civil_from_days(days);
    let rest = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rest / 3600,
        (rest % 3600) / 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Summary;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
    }

    #[test]
    fn counts_and_durations() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(2.5), "2.50");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1234.4), "1,234");
        assert_eq!(count(190_000.0), "190,000");
        assert_eq!(count(1_234_567.0), "1,234,567");
        assert_eq!(duration(5.25), "5.2 s");
        assert_eq!(duration(125.0), "2m 05s");
        assert_eq!(duration(3723.0), "1h 02m 03s");
    }

    #[test]
    fn ratios_need_a_positive_denominator() {
        assert_eq!(ratio(4.0, 2.0), Some(2.0));
        assert_eq!(ratio(4.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 2.0), None);
    }

    #[test]
    fn tables_line_up() {
        let rows = vec![
            vec!["a".to_owned(), "1".to_owned()],
            vec!["long".to_owned(), "1000".to_owned()],
        ];
        assert_eq!(table(&rows), "a        1\nlong  1000\n");
    }

    fn step(rate: f64, delivered_per_sec: f64, p99: f64) -> fanout::Step {
        fanout::Step {
            rate,
            scheduled: 1,
            published: 1,
            delivered: 1,
            expected: 1,
            delivery_ratio: 1.0,
            seconds: 1.0,
            delivered_per_sec,
            latency: Summary {
                count: 1,
                p50_ms: p99 / 2.0,
                p99_ms: p99,
                max_ms: p99,
            },
            server_cpu_pct: 50.0,
            loadgen_cpu_pct: 50.0,
            disconnects: 0,
            wire_bytes_per_delivery: 0.0,
            publisher_dropped: false,
            sustained: true,
            passed: true,
        }
    }

    fn outcome(target: Target, best: Option<f64>, fixed_p99: f64) -> fanout::Outcome {
        fanout::Outcome {
            target,
            subscribers: 100,
            connected: 100,
            connect_secs: 1.0,
            rss_before_bytes: 0,
            rss_idle_bytes: 0,
            idle_bytes_per_connection: 2048.0,
            fixed: step(10.0, 1000.0, fixed_p99),
            search: Vec::new(),
            // Without a latency bound, twice the rate and three times the p99.
            sustained: best.map(|rate| step(2.0 * rate, rate * 200.0, 150.0)),
            sustained_is_bounded: true,
            best: best.map(|rate| step(rate, rate * 100.0, 50.0)),
            best_is_bounded: true,
            peak_delivered_per_sec: 0.0,
        }
    }

    #[test]
    fn medians_over_rounds_and_ratios_to_peers() {
        let mut report = Report {
            date: String::new(),
            machine: Machine::this(),
            command: String::new(),
            quick: true,
            elapsed_secs: 0.0,
            notes: Vec::new(),
            settings: serde_json::Value::Null,
            fanout: vec![
                outcome(Target::TidingsWs, Some(100.0), 4.0),
                outcome(Target::NaiveAxum, Some(50.0), 8.0),
                outcome(Target::TidingsWs, Some(300.0), 6.0),
                outcome(Target::NaiveAxum, None, 10.0),
                outcome(Target::TidingsWs, Some(200.0), 5.0),
                outcome(Target::Floor, Some(100.0), 4.0),
            ],
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
        report.summarise();
        assert_eq!(report.fanout_summary.len(), 3);
        let tidings = &report.fanout_summary[0];
        assert_eq!(tidings.target, Target::TidingsWs);
        assert_eq!(tidings.rounds, 3);
        assert_eq!(tidings.best_rate, 200.0);
        assert_eq!(tidings.fixed_p99_ms, 5.0);
        let naive = &report.fanout_summary[1];
        // A round where no rate passed counts as zero.
        assert_eq!(naive.best_rate, 25.0);
        assert_eq!(report.ratios.len(), 2);
        let r = &report.ratios[0];
        assert_eq!(tidings.max_delivered_per_sec, 40_000.0);
        assert_eq!(tidings.max_delivered_rate, 400.0);
        assert_eq!(tidings.max_delivered_p99_ms, 150.0);
        assert_eq!(naive.max_delivered_per_sec, 5_000.0);
        assert_eq!(r.delivered_per_sec, Some(40_000.0 / 5_000.0));
        assert_eq!(r.delivered_within_bound, Some(20_000.0 / 2_500.0));
        assert_eq!(r.fixed_p99, Some(5.0 / 9.0));
        assert_eq!(r.idle_memory, Some(1.0));
        // The floor's one round: Tidings' p99 over its own.
        let floor = &report.ratios[1];
        assert_eq!(floor.fixed_p99, Some(5.0 / 4.0));
        let text = report.render();
        assert!(text.contains("tidings-ws ÷ naive-axum"), "{text}");
        assert!(text.contains("tidings-ws ÷ floor"), "{text}");
        assert!(text.contains("quick smoke run"), "{text}");
    }
}

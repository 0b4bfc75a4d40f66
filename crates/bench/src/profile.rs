//! `--only profile`: where a delivery's CPU goes, in instructions. The server runs under
//! valgrind's callgrind; once the subscribers are connected and at rest its counters are zeroed,
//! the publisher posts a fixed number of messages, and the counters are dumped when every
//! subscriber has them all. What the server executed in between, divided by the deliveries, is
//! its instructions per delivery, with the functions that executed most of them.
//!
//! Instruction counts are the same from run to run of the same binary on the same input, however
//! busy the machine is, where wall-clock figures on two shared cores are not: the next change to
//! the fan-out is judged by this figure first. Only user space is counted — the kernel's work for
//! each socket write (the larger part, see BENCHMARKS.md) is not — and valgrind runs the server's
//! threads one at a time, so nothing here says how the work spreads over cores.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::process::Command;

use crate::fanout::{self, Mark};
use crate::process::ServerProcess;
use crate::suite::{Settings, seed_fanout, tidings_command};
use crate::target::{Endpoint, Target};

/// How a profile run is shaped.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub subscribers: usize,
    /// Messages published while counting.
    pub messages: u64,
    /// Their rate, messages per second.
    pub rate: f64,
    /// Functions listed, most instructions first.
    pub top: usize,
}

/// One function's share of the counted instructions.
#[derive(Debug, Clone, Serialize)]
pub struct Spent {
    pub function: String,
    /// Instructions executed in the function itself (not in what it called).
    pub instructions: u64,
    pub percent: f64,
}

/// What one profile run counted.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub target: Target,
    pub subscribers: usize,
    pub connected: usize,
    pub published: u64,
    pub deliveries: u64,
    /// The server's instructions from the first publish to the last delivery.
    pub instructions: u64,
    pub instructions_per_delivery: f64,
    pub top: Vec<Spent>,
    /// The dump, kept in the working directory.
    pub dump: PathBuf,
}

/// Runs one profile of `target` (a Tidings transport).
pub async fn run(
    settings: &Settings,
    template: &Path,
    work: &Path,
    target: Target,
) -> Result<Outcome> {
    if !target.is_tidings() {
        bail!("only Tidings' own transports are profiled");
    }
    let plan = &settings.profile;
    let name = format!("profile-{}-{}", target.name(), plan.subscribers);
    let data = work.join(&name);
    let access = seed_fanout(settings, template, &data, target, plan.subscribers).await?;
    let out_prefix = work.join(format!("{name}.callgrind"));
    let mut valgrind = Command::new("valgrind");
    valgrind
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}.%p", out_prefix.display()))
        .arg("--dump-instr=no")
        .arg(&settings.server_bin);
    let command = tidings_command(valgrind, settings, &data, plan.subscribers, &[]);
    let log = work.join(format!("{name}.log"));
    let server = ServerProcess::spawn("tidings-server (callgrind)", command, &log)
        .await
        .context("starting the server under valgrind (Debian's valgrind package)")?;
    let pid = server.pid();
    let endpoint = Endpoint {
        target,
        nodes: vec![server.addr],
        access: Some(access),
    };
    // Under valgrind the server is tens of times slower: generous waits, one step.
    let mut shape = settings.fanout.clone();
    shape.connect_deadline_secs = 600.0;
    shape.drain_secs = 300.0;
    let fanout_plan = shape.plan(plan.subscribers);
    let marks = |mark: Mark| -> Result<()> {
        let flag = match mark {
            Mark::Publishing => "--zero",
            Mark::Delivered => "--dump",
        };
        let done = std::process::Command::new("callgrind_control")
            .arg(flag)
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .status()
            .context("running callgrind_control")?;
        if !done.success() {
            bail!("callgrind_control {flag} {pid}: {done}");
        }
        Ok(())
    };
    let counted = fanout::counted(
        &endpoint,
        std::slice::from_ref(&server),
        &fanout_plan,
        plan.messages,
        plan.rate,
        &marks,
    )
    .await;
    server.stop().await?;
    let (connected, step) = counted?;
    let dump = dumped(&out_prefix, pid)?;
    let instructions = total(&std::fs::read_to_string(&dump)?)
        .with_context(|| format!("no totals in {}", dump.display()))?;
    let top = annotate(&dump, plan.top).await?;
    // Kept for callgrind_annotate or KCachegrind: the whole call graph of the counted part.
    let kept = PathBuf::from(format!("{name}.callgrind"));
    std::fs::copy(&dump, &kept).with_context(|| format!("keeping {}", kept.display()))?;
    let _ = std::fs::remove_dir_all(&data);
    Ok(Outcome {
        target,
        subscribers: plan.subscribers,
        connected,
        published: step.published,
        deliveries: step.delivered,
        instructions,
        instructions_per_delivery: instructions as f64 / step.delivered.max(1) as f64,
        top,
        dump: kept,
    })
}

/// The dump `--dump` wrote: callgrind numbers them `PREFIX.PID.1`, `.2`, … (the final one at
/// exit has no number); the first is the one asked for.
fn dumped(prefix: &Path, pid: u32) -> Result<PathBuf> {
    let path = PathBuf::from(format!("{}.{pid}.1", prefix.display()));
    if path.is_file() {
        Ok(path)
    } else {
        bail!("callgrind wrote no dump at {}", path.display())
    }
}

/// The `totals:` (or `summary:`) line of a callgrind dump: instructions executed.
fn total(dump: &str) -> Option<u64> {
    dump.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or(line.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The `top` functions by their own instructions, from `callgrind_annotate`.
async fn annotate(dump: &Path, top: usize) -> Result<Vec<Spent>> {
    let out = Command::new("callgrind_annotate")
        .arg("--inclusive=no")
        .arg("--threshold=100")
        .arg(dump)
        .output()
        .await
        .context("running callgrind_annotate")?;
    if !out.status.success() {
        bail!(
            "callgrind_annotate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(spent)
        .filter(|s| !OPEN_FRAMES.iter().any(|open| s.function.contains(open)))
        .take(top)
        .collect())
}

/// Frames that were open on the threads' stacks when the counters were zeroed — the threads'
/// entry points and the runtime's loop — which callgrind charges with all their callees' work
/// as if their own. Left out of the list: they say nothing about where the work went.
const OPEN_FRAMES: &[&str] = &[
    "PROGRAM TOTALS",
    "clone",
    "start_thread",
    "thread_start",
    "call_once{{vtable.shim}}",
    "__rust_begin_short_backtrace",
    "runtime::enter_runtime",
    "Scoped<T>::set",
    "worker::run",
    "Core<T,S>::poll",
    "Harness<T,S>::poll",
    "blocking::pool::Inner::run",
    "task::raw::poll",
];

/// One function line of `callgrind_annotate`: `1,234,567 (12.34%)  file:function [object]`.
fn spent(line: &str) -> Option<Spent> {
    let line = line.trim();
    let (count, rest) = line.split_once(' ')?;
    let instructions: u64 = count.replace(',', "").parse().ok()?;
    let rest = rest.trim_start();
    let percent = rest
        .strip_prefix('(')?
        .split_once("%)")
        .and_then(|(p, _)| p.trim().parse().ok())?;
    let function = rest.split_once("%)")?.1.trim();
    // "file:function [object]": the function, without the file or the object.
    let function = function.rsplit_once(" [").map_or(function, |(f, _)| f);
    let function = function.split_once(':').map_or(function, |(_, f)| f);
    Some(Spent {
        function: function.to_owned(),
        instructions,
        percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callgrind_annotate_and_dump_lines() {
        let s = spent(
            " 1,234,567 (12.34%)  ???:tidings_server::hub::Hub::publish_message [/x/tidings-server]",
        )
        .unwrap();
        assert_eq!(s.function, "tidings_server::hub::Hub::publish_message");
        assert_eq!((s.instructions, s.percent), (1_234_567, 12.34));
        assert!(spent("Ir  file:function").is_none());
        assert!(spent("--------------").is_none());
        assert_eq!(total("events: Ir\nsummary: 987\ntotals: 987\n"), Some(987));
    }
}

//! Search: one-word queries over `GET /api/search` against a database of millions of messages
//! of made-up text, and what the full-text index costs on disk. The seeding indexes the messages
//! in one go after writing them, as the server's store indexes in bulk.
//!
//! The text is words of a made-up vocabulary drawn with Zipf's law (the `r`th commonest word
//! about `1/r` as often as the commonest), as words are in real chat, so a query can be asked for
//! a word of each kind: a common one (in a few percent of the messages), a middling one (a few in
//! ten thousand) and a rare one (a few hundred in all). The messages are spread over
//! [`ROOMS`] rooms; the reader is in all of them, and a second reader in one only, whose search
//! must pass over the other rooms' hits.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use tidings_proto::v1::SearchResults;
use tokio::time::Instant;

use crate::latency::Summary;
use crate::process::ServerProcess;
use crate::seed::{DATABASE, Seeder};

/// Rooms the messages are spread over.
pub const ROOMS: usize = 20;
/// Words in the made-up vocabulary.
const VOCABULARY: usize = 50_000;
/// Words in a message: uniformly from this range.
const WORDS_PER_MESSAGE: std::ops::RangeInclusive<usize> = 4..=16;
/// Queries before measuring, so caches are as warm as on a server that has been up a while.
const WARMUP: usize = 10;
/// One search may take this long before the run fails.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The kinds of word asked for, by their rank in the vocabulary (1 = the commonest).
const KINDS: [(&str, std::ops::RangeInclusive<usize>); 3] = [
    ("common word (rank 1–50)", 1..=50),
    ("middling word (rank 500–2,000)", 500..=2000),
    ("rare word (rank 20,000–50,000)", 20_000..=50_000),
];

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub rows: u64,
    /// Queries measured of each kind, for each reader.
    pub queries: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub rows: u64,
    pub rooms: usize,
    pub seed_secs: f64,
    pub seed_rows_per_sec: f64,
    pub database_bytes: u64,
    /// The messages table alone.
    pub messages_bytes: u64,
    /// The full-text index (FTS5's shadow tables).
    pub index_bytes: u64,
    pub queries: Vec<Measured>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub reader: String,
    pub kind: String,
    /// Hits in the first answer, averaged (at most a page of 20).
    pub mean_hits: f64,
    pub latency: Summary,
}

/// A made-up corpus in a seeded database, and who searches it.
#[derive(Debug)]
pub struct Seeded {
    pub rows: u64,
    pub seconds: f64,
    pub database_bytes: u64,
    pub messages_bytes: u64,
    pub index_bytes: u64,
    /// The reader in every room, and the one in one room.
    pub everywhere: String,
    pub one_room: String,
}

/// The made-up word of rank `rank` (1 = the commonest): syllables, so it is a word to the
/// tokenizer and unlike any other.
pub fn word(rank: usize) -> String {
    const SYLLABLES: [&str; 20] = [
        "ba", "ke", "ti", "mo", "ru", "sa", "ne", "li", "po", "du", "fa", "ge", "hi", "jo", "ku",
        "ma", "pe", "ri", "so", "tu",
    ];
    let mut n = rank;
    let mut out = String::new();
    loop {
        out.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            break;
        }
    }
    // Two syllables at least: "xa" is no syllable, so a short word is unlike every longer one.
    if out.len() < 4 {
        out.push_str("xa");
    }
    out
}

/// Ranks drawn with Zipf's law over the vocabulary.
struct Zipf {
    /// The cumulative probability of ranks 1..=i, at i - 1.
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut total = 0.0;
        let mut cumulative = Vec::with_capacity(n);
        for rank in 1..=n {
            total += 1.0 / rank as f64;
            cumulative.push(total);
        }
        for c in &mut cumulative {
            *c /= total;
        }
        Zipf { cumulative }
    }

    fn rank(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.random();
        self.cumulative.partition_point(|&c| c < u) + 1
    }
}

/// Seeds `rows` messages of made-up text over [`ROOMS`] rooms, timing it, and measures the index.
pub fn seed(template: &std::path::Path, data_dir: &std::path::Path, rows: u64) -> Result<Seeded> {
    let mut seeder = Seeder::copy(template, data_dir)?;
    let reader = seeder.user("reader")?;
    let loner = seeder.user("loner")?;
    let writer = seeder.user("writer")?;
    let everywhere = seeder.session(reader, "tidings-bench search")?;
    let one_room = seeder.session(loner, "tidings-bench search, one room")?;
    let mut rooms = Vec::with_capacity(ROOMS);
    for i in 0..ROOMS {
        let members: &[i64] = if i == 0 {
            &[reader, loner, writer]
        } else {
            &[reader, writer]
        };
        rooms.push(seeder.room(&format!("corpus-{i}"), writer, members)?);
    }
    let words: Vec<String> = (1..=VOCABULARY).map(word).collect();
    let zipf = Zipf::new(VOCABULARY);
    let mut rng = StdRng::seed_from_u64(13);
    let started = Instant::now();
    seeder.messages_with(writer, rows, |i, body| {
        let n = rng.random_range(WORDS_PER_MESSAGE);
        for w in 0..n {
            if w > 0 {
                body.push(' ');
            }
            body.push_str(&words[zipf.rank(&mut rng) - 1]);
        }
        rooms[(i % ROOMS as u64) as usize]
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let messages_bytes = seeder.bytes_of("messages")?;
    let index_bytes = seeder.bytes_of("message_search%")?;
    seeder.finish()?;
    let database_bytes = std::fs::metadata(data_dir.join(DATABASE))
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(Seeded {
        rows,
        seconds,
        database_bytes,
        messages_bytes,
        index_bytes,
        everywhere,
        one_room,
    })
}

/// Asks each kind of word, for each reader, `plan.queries` times after a warm-up.
pub async fn run(server: &ServerProcess, seeded: &Seeded, plan: &Plan) -> Result<Outcome> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let mut rng = StdRng::seed_from_u64(7);
    let mut queries = Vec::new();
    for (reader, token) in [
        (format!("in all {ROOMS} rooms"), &seeded.everywhere),
        (format!("in 1 room of {ROOMS}"), &seeded.one_room),
    ] {
        for (kind, ranks) in KINDS {
            let mut samples = Vec::with_capacity(plan.queries);
            let mut hits = 0usize;
            for i in 0..WARMUP + plan.queries {
                let q = word(rng.random_range(ranks.clone()));
                let url = format!("http://{}/api/search?q={q}", server.addr);
                let started = Instant::now();
                let response =
                    tokio::time::timeout(QUERY_TIMEOUT, client.get(&url).bearer_auth(token).send())
                        .await
                        .with_context(|| format!("GET {url} took over {QUERY_TIMEOUT:?}"))?
                        .with_context(|| format!("GET {url}"))?;
                let status = response.status();
                let body = response.bytes().await?;
                let micros = started.elapsed().as_micros();
                if !status.is_success() {
                    bail!("GET {url}: {status}: {}", String::from_utf8_lossy(&body));
                }
                let results: SearchResults =
                    serde_json::from_slice(&body).context("decoding search results")?;
                if i >= WARMUP {
                    samples.push(u64::try_from(micros).unwrap_or(u64::MAX));
                    hits += results.hits.len();
                }
            }
            queries.push(Measured {
                reader: reader.clone(),
                kind: kind.to_owned(),
                mean_hits: hits as f64 / plan.queries.max(1) as f64,
                latency: Summary::of_samples(&samples),
            });
        }
    }
    if queries[0].mean_hits == 0.0 {
        bail!("the commonest words found nothing: the index is not being searched");
    }
    let outcome = Outcome {
        rows: seeded.rows,
        rooms: ROOMS,
        seed_secs: seeded.seconds,
        seed_rows_per_sec: seeded.rows as f64 / seeded.seconds.max(1e-9),
        database_bytes: seeded.database_bytes,
        messages_bytes: seeded.messages_bytes,
        index_bytes: seeded.index_bytes,
        queries,
    };
    tracing::info!(
        p99_ms = outcome.queries[0].latency.p99_ms,
        index_mib = outcome.index_bytes / (1024 * 1024),
        "search"
    );
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_and_zipf_favours_the_first() {
        let words: std::collections::HashSet<String> = (1..=VOCABULARY).map(word).collect();
        assert_eq!(words.len(), VOCABULARY);
        let zipf = Zipf::new(VOCABULARY);
        let mut rng = StdRng::seed_from_u64(1);
        let draws: Vec<usize> = (0..100_000).map(|_| zipf.rank(&mut rng)).collect();
        assert!(draws.iter().all(|&r| (1..=VOCABULARY).contains(&r)));
        let firsts = draws.iter().filter(|&&r| r == 1).count();
        let tenths = draws.iter().filter(|&&r| r == 10).count();
        // Rank 1 is drawn about 1/H(50,000) ≈ 8.8 % of the time, rank 10 a tenth of that.
        assert!((7_000..10_500).contains(&firsts), "{firsts}");
        assert!(
            (6..=14).contains(&(firsts / tenths.max(1))),
            "{firsts} / {tenths}"
        );
    }
}

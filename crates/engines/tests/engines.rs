//! The engine harness itself: servers start, answer, make databases, survive restarts.

use tidings_engines::Postgres;

#[test]
fn postgres_starts_answers_and_restarts() {
    let pg = Postgres::start().unwrap();
    assert_eq!(pg.psql("SELECT 40 + 2").unwrap(), "42");
    let url = pg.fresh_database().unwrap();
    let other = pg.fresh_database().unwrap();
    assert_ne!(url, other);
    let name = url.rsplit('/').next().unwrap();
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        ))
        .unwrap(),
        "1"
    );
    pg.restart().unwrap();
    assert_eq!(pg.psql("SELECT 'again'").unwrap(), "again");
}

#[test]
fn redis_starts_stops_and_resumes_on_its_port() {
    use std::io::{Read, Write};
    let redis = tidings_engines::Redis::start().unwrap();
    let addr = redis.url().trim_start_matches("redis://").to_owned();
    let ping = |addr: &str| -> Option<String> {
        let mut conn = std::net::TcpStream::connect(addr).ok()?;
        conn.write_all(b"PING\r\n").ok()?;
        let mut answer = [0u8; 7];
        conn.read_exact(&mut answer).ok()?;
        Some(String::from_utf8_lossy(&answer).into_owned())
    };
    assert_eq!(ping(&addr).as_deref(), Some("+PONG\r\n"));
    redis.stop();
    assert_eq!(ping(&addr), None);
    redis.resume().unwrap();
    assert_eq!(ping(&addr).as_deref(), Some("+PONG\r\n"));
}

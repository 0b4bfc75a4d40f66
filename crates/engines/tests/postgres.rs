//! The engine harness itself: a server starts, answers, makes databases, survives a restart.

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

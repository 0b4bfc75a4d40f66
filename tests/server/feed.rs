//! The SSE feed (`/api/events`): session status and locks, message alerts, resuming with
//! `Last-Event-ID` or `?last_event_id=`, resets, the response's framing, and a server restart.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use tidings_proto::v1::{
    EVENT_LOCK, EVENT_MESSAGE, EVENT_RESET, EVENT_SESSION, LAST_EVENT_ID_PARAM, Lock, LockReason,
    MessageAlert, MessageId, PREVIEW_CHARS, Reset, Revoked, SessionInfo, SessionState,
    SessionStatus, close,
};
use tidings_tests::{Client, Event, Feed, PASSWORD, TestServer, WAIT, post_message};

/// The longest a revoked session's feed may take to say so.
const LOCK_WITHIN: Duration = Duration::from_secs(1);

/// The wall clock in milliseconds since the epoch, as the server reports times.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).expect("duration fits")
}

/// The next `message` event, skipping `session` events; anything else fails the test. Checks that
/// the event's `id:` is the message id.
async fn next_message(feed: &mut Feed) -> MessageAlert {
    loop {
        let event = feed.next().await.expect("the feed is still open");
        match event.name.as_str() {
            EVENT_SESSION => continue,
            EVENT_MESSAGE => {
                let alert: MessageAlert = event.json();
                assert_eq!(
                    event.id.as_deref(),
                    Some(alert.id.to_string().as_str()),
                    "a message event's id: is the message id"
                );
                return alert;
            }
            _ => panic!("expected a message event, got {event:?}"),
        }
    }
}

/// The ids of the next `n` message events.
async fn next_messages(feed: &mut Feed, n: usize) -> Vec<MessageId> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(next_message(feed).await.id);
    }
    ids
}

/// Reads until the feed ends, failing on anything but `session` events on the way.
async fn ended(feed: &mut Feed) {
    while let Some(event) = feed.next().await {
        assert_eq!(
            event.name, EVENT_SESSION,
            "nothing after the lock: {event:?}"
        );
    }
}

/// Asserts that `client`'s token is refused by the feed, both through the SSE client and by a
/// plain GET.
async fn feed_refused(client: &Client) {
    match client.feed(None).error().await {
        eventsource_client::Error::UnexpectedResponse(response, _) => {
            assert_eq!(response.status(), 401, "the feed refuses the token")
        }
        other => panic!("expected a 401, got {other}"),
    }
    let response = client
        .request(Method::GET, "/api/events")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// The session list as `other` (a session of the same user) sees it: the entry for `session`.
async fn session_info(other: &Client, session: i64) -> SessionInfo {
    let sessions: Vec<SessionInfo> = other.get("/api/sessions").await;
    sessions
        .into_iter()
        .find(|s| s.id == session)
        .unwrap_or_else(|| panic!("session {session} is listed"))
}

/// Whether `status` says what its own deadlines imply under `warning`.
fn assert_state_matches_deadlines(status: &SessionStatus, warning: Duration) {
    let left = status.expires_at.min(status.idle_expires_at) - status.now;
    let expected = if left > millis(warning) {
        SessionState::Active
    } else {
        SessionState::Expiring
    };
    assert!(left > 0, "a live session's deadline is ahead: {status:?}");
    assert_eq!(status.state, expected, "{left} ms left: {status:?}");
}

/// The server's wall time on a paused clock, read from what it sent at a known moment: it moves
/// with the runtime's clock only.
struct ServerTime {
    wall: i64,
    at: tokio::time::Instant,
}

impl ServerTime {
    /// The server's time is `status.now` now (nothing passes while the event travels).
    fn of(status: &SessionStatus) -> ServerTime {
        ServerTime {
            wall: status.now,
            at: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> i64 {
        self.wall + millis(self.at.elapsed())
    }
}

#[tokio::test(start_paused = true)]
async fn session_status_arrives_periodically_with_its_deadlines() {
    let server = TestServer::start_paused(|_| {}).await;
    let ana = server.user("ana").await;
    let mut feed = ana.feed(None);
    let mut statuses = Vec::new();
    while statuses.len() < 4 {
        let event = feed.expect(EVENT_SESSION).await;
        statuses.push(event.json::<SessionStatus>());
    }
    // Another session of the same user reads the deadlines without touching ana's session.
    let other = server.login("ana", PASSWORD).await;
    let info = session_info(&other, ana.session).await;
    let config = &server.config.session;
    let interval = millis(config.feed_interval);
    for status in &statuses {
        assert_eq!(status.state, SessionState::Active, "{status:?}");
        assert_eq!(status.expires_at, info.expires_at, "{status:?}");
        assert_eq!(
            status.idle_expires_at,
            info.last_seen_at + millis(config.idle_timeout),
            "{status:?}"
        );
        assert_state_matches_deadlines(status, config.expiring_warning);
    }
    for pair in statuses.windows(2) {
        assert_eq!(
            pair[1].now - pair[0].now,
            interval,
            "statuses arrive every feed_interval"
        );
    }
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn session_turns_expiring_near_its_end_then_locks_as_expired() {
    let server = TestServer::start_paused(|config| {
        config.session.lifetime = Duration::from_secs(60);
        config.session.expiring_warning = Duration::from_secs(15);
        // Not a divisor of the lifetime: the lock comes from the deadline, not from a status tick.
        config.session.feed_interval = Duration::from_secs(7);
    })
    .await;
    let warning = millis(server.config.session.expiring_warning);
    let ana = server.user("ana").await;
    let mut feed = ana.feed(None);
    let mut states = Vec::new();
    let mut clock = None;
    let (lock, locked_at) = loop {
        let event = feed.next().await.expect("the feed ends only after a lock");
        match event.name.as_str() {
            EVENT_SESSION => {
                let status: SessionStatus = event.json();
                let clock = clock.get_or_insert_with(|| ServerTime::of(&status));
                assert_eq!(status.now, clock.now(), "{status:?}");
                let left = status.expires_at - status.now;
                let expected = if left > warning {
                    SessionState::Active
                } else {
                    SessionState::Expiring
                };
                assert_eq!(status.state, expected, "{left} ms left: {status:?}");
                states.push((status.state, status.expires_at));
            }
            EVENT_LOCK => break (event.json::<Lock>(), clock.as_ref().map(ServerTime::now)),
            _ => panic!("unexpected {event:?}"),
        }
    };
    let expires_at = states[0].1;
    // A status every seven seconds for the minute: seven active (60 to 18 s left), two expiring
    // (11 and 4 s left), then the lock at the very millisecond of the end.
    let count = |state| states.iter().filter(|(s, _)| *s == state).count();
    assert_eq!(count(SessionState::Active), 7, "{states:?}");
    assert_eq!(count(SessionState::Expiring), 2, "{states:?}");
    assert_eq!(lock.reason, LockReason::Expired);
    assert_eq!(
        locked_at,
        Some(expires_at),
        "locked when the lifetime ended"
    );
    ended(&mut feed).await;
    feed_refused(&ana).await;
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_locks_its_feed_as_expired() {
    let server = TestServer::start_paused(|config| {
        config.session.idle_timeout = Duration::from_secs(1800);
        // Not a divisor of the timeout: the lock comes from the deadline, not from a status tick.
        config.session.feed_interval = Duration::from_secs(7);
    })
    .await;
    // Only feeds use ana's session after registering: they must not count as activity.
    let ana = server.user("ana").await;
    let mut first = ana.feed(None);
    let status: SessionStatus = first.expect(EVENT_SESSION).await.json();
    let clock = ServerTime::of(&status);
    let idle_expires_at = status.idle_expires_at;
    // A quarter of an hour later — far past the point where a request counting as activity would
    // record it — opening a second feed must not move the deadline.
    tokio::time::advance(Duration::from_secs(900)).await;
    let mut second = ana.feed(None);
    // The SSE client connects when first read: read its opening status now.
    let status: SessionStatus = second.expect(EVENT_SESSION).await.json();
    assert_eq!(status.now, clock.now(), "{status:?}");
    assert_eq!(status.idle_expires_at, idle_expires_at, "{status:?}");
    for feed in [&mut first, &mut second] {
        let lock = loop {
            let event = feed.next().await.expect("the feed ends only after a lock");
            match event.name.as_str() {
                EVENT_SESSION => {
                    let status: SessionStatus = event.json();
                    // Within the (default, ten-minute) warning of the idle deadline or not, as
                    // the deadline says; never moved by the feeds.
                    assert_state_matches_deadlines(&status, server.config.session.expiring_warning);
                    assert_eq!(
                        status.idle_expires_at, idle_expires_at,
                        "feeds do not move the idle deadline: {status:?}"
                    );
                }
                EVENT_LOCK => break event.json::<Lock>(),
                _ => panic!("unexpected {event:?}"),
            }
        };
        assert_eq!(lock.reason, LockReason::Expired);
        assert_eq!(clock.now(), idle_expires_at, "locked at the idle deadline");
        ended(feed).await;
    }
    feed_refused(&ana).await;
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_session_closes_its_chat_as_expired_not_revoked() {
    let server = TestServer::start_paused(|config| {
        config.session.lifetime = Duration::from_secs(5);
        // Heartbeats far apart: only the deadline can close the chat in time.
        config.chat.heartbeat = Duration::from_secs(3600);
    })
    .await;
    let ana = server.user("ana").await;
    let sessions: Vec<tidings_proto::v1::SessionInfo> = ana.get("/api/sessions").await;
    let expires_at = sessions[0].expires_at;
    let mut feed = ana.feed(None);
    let clock = ServerTime::of(&feed.expect(EVENT_SESSION).await.json());
    let mut chat = ana.chat().await;
    let closed = chat.closed().await;
    assert_eq!(closed.code, close::SESSION_EXPIRED, "{closed:?}");
    assert_eq!(closed.reason, "session expired");
    // The chat channel's subscription watches the session's deadline: closed when it passes,
    // not at the next heartbeat's look.
    assert_eq!(clock.now(), expires_at, "closed when the lifetime ended");
    server.stop().await;
}

/// A server whose feeds report the session's status only once a minute, so a lock that arrives
/// within [`LOCK_WITHIN`] was pushed by the revoke, not found by the next status poll.
async fn server_without_status_polls() -> TestServer {
    TestServer::start_with(|config| config.session.feed_interval = Duration::from_secs(60)).await
}

/// Waits for `feed`'s lock and returns how long after `since` it was read.
async fn lock_after(feed: &mut Feed, since: Instant) -> (LockReason, Duration) {
    let lock: Lock = feed.expect(EVENT_LOCK).await.json();
    (lock.reason, since.elapsed())
}

#[tokio::test]
async fn revoking_a_session_locks_its_feed_and_closes_its_chat() {
    let server = server_without_status_polls().await;
    let ana = server.user("ana").await;
    let phone = server.login("ana", PASSWORD).await;
    let mut feed = ana.feed(None);
    let mut chat = ana.chat().await;
    // The stream is live before the revoke: its opening status has arrived.
    feed.expect(EVENT_SESSION).await;

    let response = phone
        .request(Method::DELETE, &format!("/api/sessions/{}", ana.session))
        .send()
        .await
        .expect("revoke request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let revoked = Instant::now();

    let (reason, elapsed) = lock_after(&mut feed, revoked).await;
    assert_eq!(reason, LockReason::Revoked);
    assert!(elapsed < LOCK_WITHIN, "lock {elapsed:?} after the revoke");
    ended(&mut feed).await;
    let closed = chat.closed().await;
    assert_eq!(closed.code, close::SESSION_REVOKED, "{closed:?}");
    feed_refused(&ana).await;
    // The revoking session is untouched.
    let mut phone_feed = phone.feed(None);
    let status: SessionStatus = phone_feed.expect(EVENT_SESSION).await.json();
    assert_eq!(status.state, SessionState::Active);
    server.stop().await;
}

#[tokio::test]
async fn revoking_all_other_sessions_locks_each_of_them() {
    let server = server_without_status_polls().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = bo.dm("ana").await.room.id;
    let laptop = server.login("ana", PASSWORD).await;
    let phone = server.login("ana", PASSWORD).await;
    let mut ana_feed = ana.feed(None);
    let mut laptop_feed = laptop.feed(None);
    let mut laptop_chat = laptop.chat().await;
    let mut phone_feed = phone.feed(None);
    for feed in [&mut ana_feed, &mut laptop_feed, &mut phone_feed] {
        feed.expect(EVENT_SESSION).await;
    }

    let response = phone
        .request(Method::DELETE, "/api/sessions")
        .send()
        .await
        .expect("revoke request");
    assert_eq!(response.status(), StatusCode::OK);
    let done = Instant::now();
    let mut revoked: Revoked = response.json().await.expect("revoked body");
    revoked.revoked.sort_unstable();
    let mut expected = vec![ana.session, laptop.session];
    expected.sort_unstable();
    assert_eq!(revoked.revoked, expected);

    for feed in [&mut ana_feed, &mut laptop_feed] {
        let (reason, elapsed) = lock_after(feed, done).await;
        assert_eq!(reason, LockReason::Revoked);
        assert!(elapsed < LOCK_WITHIN, "lock {elapsed:?} after the revoke");
        ended(feed).await;
    }
    let closed = laptop_chat.closed().await;
    assert_eq!(closed.code, close::SESSION_REVOKED, "{closed:?}");
    feed_refused(&ana).await;
    feed_refused(&laptop).await;
    // The session that revoked the others keeps its feed: no lock, and messages still arrive.
    let after = post_message(&bo, room, "m1", "still there @ana?").await;
    let alert = next_message(&mut phone_feed).await;
    assert_eq!((alert.id, alert.mentions_you), (after.id, true));
    server.stop().await;
}

#[tokio::test]
async fn logging_out_locks_the_sessions_own_feed() {
    let server = server_without_status_polls().await;
    let ana = server.user("ana").await;
    let mut feed = ana.feed(None);
    feed.expect(EVENT_SESSION).await;
    let response = ana
        .request(Method::POST, "/api/logout")
        .send()
        .await
        .expect("logout request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let done = Instant::now();
    let (reason, elapsed) = lock_after(&mut feed, done).await;
    assert_eq!(reason, LockReason::Revoked);
    assert!(elapsed < LOCK_WITHIN, "lock {elapsed:?} after the logout");
    ended(&mut feed).await;
    feed_refused(&ana).await;
    server.stop().await;
}

#[tokio::test]
async fn new_messages_in_the_users_rooms_arrive_as_alerts() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let cy = server.user("cy").await;
    let ops = ana.create_room("ops").await.room.id;
    bo.join(ops).await;
    let lobby = ana.create_room("lobby").await.room.id;
    cy.join(lobby).await;
    let mut bo_feed = bo.feed(None);
    let mut cy_feed = cy.feed(None);
    bo_feed.expect(EVENT_SESSION).await;
    cy_feed.expect(EVENT_SESSION).await;

    let mention = post_message(&ana, ops, "m1", "deploy is green @bo").await;
    let alert = next_message(&mut bo_feed).await;
    assert_eq!(
        alert,
        MessageAlert {
            room: ops,
            id: mention.id,
            author: ana.user.clone(),
            preview: "deploy is green @bo".into(),
            sent_at: mention.sent_at,
            mentions_you: true,
        }
    );

    let long = "x".repeat(PREVIEW_CHARS * 2);
    let plain = post_message(&ana, ops, "m2", &long).await;
    let alert = next_message(&mut bo_feed).await;
    assert_eq!(alert.id, plain.id);
    assert!(!alert.mentions_you, "{alert:?}");
    assert_eq!(alert.preview.chars().count(), PREVIEW_CHARS);
    assert!(alert.preview.ends_with('…'), "{}", alert.preview);

    // cy is not in ops: the first alert cy gets is the lobby message posted after both.
    let in_lobby = post_message(&ana, lobby, "m3", "lunch?").await;
    let alert = next_message(&mut cy_feed).await;
    assert_eq!((alert.room, alert.id), (lobby, in_lobby.id));
    assert!(!alert.mentions_you);

    // Line breaks and SSE field names in a body stay inside the event's one `data:` line.
    let tricky = "first\r\nsecond\n\ndata: injected\nevent: lock\rid: 1";
    let sent = post_message(&ana, ops, "m4", tricky).await;
    let alert = next_message(&mut bo_feed).await;
    assert_eq!((alert.id, alert.preview.as_str()), (sent.id, tricky));

    // Membership changes apply to an open feed: a room joined now counts, a room left does not.
    cy.join(ops).await;
    let joined = post_message(&ana, ops, "m5", "welcome @cy").await;
    let alert = next_message(&mut cy_feed).await;
    assert_eq!(
        (alert.room, alert.id, alert.mentions_you),
        (ops, joined.id, true)
    );
    let response = bo
        .request(Method::POST, &format!("/api/rooms/{ops}/leave"))
        .send()
        .await
        .expect("leave request");
    assert!(response.status().is_success(), "{}", response.status());
    // joined (m5) reached bo before the leave; the one after it must not.
    assert_eq!(next_message(&mut bo_feed).await.id, joined.id);
    post_message(&ana, ops, "m6", "bo has gone").await;
    let dm = ana.dm("bo").await.room.id;
    let sentinel = post_message(&ana, dm, "m7", "psst").await;
    assert_eq!(next_message(&mut bo_feed).await.id, sentinel.id);
    server.stop().await;
}

#[tokio::test]
async fn a_dropped_feed_resumes_with_last_event_id_without_gaps_or_duplicates() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let ops = ana.create_room("ops").await.room.id;
    bo.join(ops).await;
    let mut feed = bo.feed(None);
    feed.expect(EVENT_SESSION).await;
    let m1 = post_message(&ana, ops, "m1", "one").await;
    let m2 = post_message(&ana, ops, "m2", "two").await;
    assert_eq!(next_messages(&mut feed, 2).await, [m1.id, m2.id]);
    drop(feed);

    let mut missed = Vec::new();
    for i in 3..=5 {
        missed.push(
            post_message(&ana, ops, &format!("m{i}"), "while away")
                .await
                .id,
        );
    }
    let mut feed = bo.feed(Some(&m2.id.to_string()));
    assert_eq!(next_messages(&mut feed, 3).await, missed, "the missed ones");
    let live = post_message(&ana, ops, "m6", "live").await;
    let sentinel = post_message(&ana, ops, "m7", "and another").await;
    assert_eq!(
        next_messages(&mut feed, 2).await,
        [live.id, sentinel.id],
        "then live ones, each once"
    );
    server.stop().await;
}

#[tokio::test]
async fn messages_sent_while_the_feed_reconnects_arrive_exactly_once_in_order() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let ops = ana.create_room("ops").await.room.id;
    bo.join(ops).await;
    let first = post_message(&ana, ops, "m0", "before").await;

    // Messages commit while the feed registers and replays, so some reach it through the
    // replay, some through the live queue, and some possibly through both.
    let poster = ana.clone();
    let sending = tokio::spawn(async move {
        let mut ids = Vec::new();
        for i in 1..=20 {
            ids.push(
                post_message(&poster, ops, &format!("c{i}"), "busy")
                    .await
                    .id,
            );
        }
        ids
    });
    let mut feed = bo.feed(Some(&first.id.to_string()));
    let got = next_messages(&mut feed, 20).await;
    let sent = tokio::time::timeout(WAIT, sending)
        .await
        .expect("sends in time")
        .expect("sender");
    assert_eq!(got, sent);
    let sentinel = post_message(&ana, ops, "last", "done").await;
    assert_eq!(
        next_message(&mut feed).await.id,
        sentinel.id,
        "no duplicates"
    );
    server.stop().await;
}

/// A feed read byte by byte with a plain HTTP client, for what the SSE client hides: headers,
/// the `retry:` line, comments, and the `?last_event_id=` parameter.
struct RawFeed {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl RawFeed {
    async fn open(client: &Client, query: &str) -> RawFeed {
        // No overall timeout: the stream stays open; each read below is bounded instead.
        let http = tidings_client::http_builder()
            .no_proxy()
            .build()
            .expect("http client");
        let response = tokio::time::timeout(
            WAIT,
            http.get(format!("{}/api/events{query}", client.base))
                .bearer_auth(&client.token)
                .send(),
        )
        .await
        .expect("response in time")
        .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        RawFeed {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next chunk of the body as it arrived.
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        let chunk = tokio::time::timeout(WAIT, self.response.chunk())
            .await
            .expect("a chunk in time")
            .expect("body")?;
        Some(chunk.to_vec())
    }

    /// The next line, without its line end (LF, CRLF or CR is accepted as the spec says; the
    /// server writes LF).
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8(line).expect("UTF-8");
                return Some(line.trim_end_matches(['\n', '\r']).to_owned());
            }
            let chunk = self.chunk().await?;
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// The next dispatched event, as the spec's parser would see it; only an `id:` inside the
    /// event itself is reported.
    async fn event(&mut self) -> Option<Event> {
        let (mut name, mut id, mut data) = (None, None, Vec::<String>::new());
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                if !data.is_empty() {
                    return Some(Event {
                        name: name.unwrap_or_else(|| "message".into()),
                        id,
                        data: data.join("\n"),
                    });
                }
                (name, id) = (None, None);
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "event" => name = Some(value),
                "id" => id = Some(value),
                "data" => data.push(value),
                _ => {}
            }
        }
    }

    /// The next event named `name`, skipping others.
    async fn expect(&mut self, name: &str) -> Event {
        loop {
            let event = self.event().await.expect("the feed is still open");
            if event.name == name {
                return event;
            }
        }
    }
}

#[tokio::test]
async fn the_last_event_id_query_parameter_resumes_like_the_header() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let ops = ana.create_room("ops").await.room.id;
    bo.join(ops).await;
    let seen = post_message(&ana, ops, "m1", "seen").await;
    let missed_a = post_message(&ana, ops, "m2", "missed @bo").await;
    let missed_b = post_message(&ana, ops, "m3", "missed too").await;

    let query = format!("?{LAST_EVENT_ID_PARAM}={}", seen.id);
    let mut raw = RawFeed::open(&bo, &query).await;
    for (missed, mentions_you) in [(&missed_a, true), (&missed_b, false)] {
        let event = raw.expect(EVENT_MESSAGE).await;
        assert_eq!(event.id, Some(missed.id.to_string()));
        let alert: MessageAlert = event.json();
        assert_eq!((alert.id, alert.mentions_you), (missed.id, mentions_you));
    }
    let live = post_message(&ana, ops, "m4", "live").await;
    let event = raw.expect(EVENT_MESSAGE).await;
    assert_eq!(event.id, Some(live.id.to_string()), "live after the replay");
    server.stop().await;
}

#[tokio::test]
async fn a_cursor_out_of_reach_gets_a_reset_to_the_latest_id() {
    let server = TestServer::start_with(|config| config.feed.replay_limit = 3).await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let ops = ana.create_room("ops").await.room.id;
    bo.join(ops).await;
    let seen = post_message(&ana, ops, "m0", "seen").await;

    // Exactly the replay limit behind: replayed.
    let mut within = Vec::new();
    for i in 1..=3 {
        within.push(post_message(&ana, ops, &format!("a{i}"), "x").await.id);
    }
    let mut feed = bo.feed(Some(&seen.id.to_string()));
    assert_eq!(next_messages(&mut feed, 3).await, within);
    drop(feed);

    // Five behind with a limit of three: a reset naming the newest message.
    let cursor = *within.last().expect("sent");
    let mut latest = 0;
    for i in 1..=5 {
        latest = post_message(&ana, ops, &format!("b{i}"), "x").await.id;
    }
    let mut feed = bo.feed(Some(&cursor.to_string()));
    let reset = feed.expect(EVENT_RESET).await;
    assert_eq!(reset.json::<Reset>(), Reset { latest_id: latest });
    assert_eq!(reset.id, Some(latest.to_string()), "the cursor moves on");
    let live = post_message(&ana, ops, "c1", "after the reset").await;
    assert_eq!(next_message(&mut feed).await.id, live.id);
    drop(feed);

    // A cursor from the future (another server, a corrupted client) gets a reset too.
    let mut feed = bo.feed(Some(&(live.id + 1000).to_string()));
    let reset = feed.expect(EVENT_RESET).await;
    assert_eq!(reset.json::<Reset>(), Reset { latest_id: live.id });
    let after = post_message(&ana, ops, "c2", "after the second reset").await;
    assert_eq!(next_message(&mut feed).await.id, after.id);
    server.stop().await;
}

#[tokio::test]
async fn the_response_is_an_unbuffered_event_stream_opening_with_retry() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let mut raw = RawFeed::open(&ana, "").await;
    let headers = raw.response.headers();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("text/event-stream"),
        "content type {content_type:?}"
    );
    assert_eq!(
        headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-cache")
    );
    let first = raw.chunk().await.expect("a first chunk");
    let text = std::str::from_utf8(&first).expect("UTF-8");
    let retry = text
        .strip_prefix("retry: ")
        .and_then(|rest| rest.split_once('\n'))
        .map(|(ms, _)| ms)
        .unwrap_or_else(|| panic!("the stream opens with retry: {text:?}"));
    assert!(retry.bytes().all(|b| b.is_ascii_digit()), "{retry:?}");
    assert_eq!(
        retry.parse::<i64>().expect("digits"),
        millis(server.config.feed.retry)
    );
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn keepalive_comments_arrive_on_an_idle_stream_whose_status_comes_less_often() {
    let keepalive = Duration::from_secs(3);
    let server = TestServer::start_paused(|config| {
        config.feed.keepalive = keepalive;
        config.session.feed_interval = Duration::from_secs(60);
    })
    .await;
    let ana = server.user("ana").await;
    let mut raw = RawFeed::open(&ana, "").await;
    let opened = tokio::time::Instant::now();
    // A comment every keepalive, to the millisecond.
    let mut comments = Vec::new();
    while comments.len() < 3 {
        let line = raw.line().await.expect("the feed is still open");
        if line.starts_with(':') {
            comments.push(opened.elapsed());
        }
    }
    assert_eq!(comments, [keepalive, keepalive * 2, keepalive * 3]);
    server.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_stream_whose_status_comes_more_often_than_the_keepalive_gets_no_comments() {
    let keepalive = Duration::from_secs(3);
    let status_every = Duration::from_secs(1);
    let server = TestServer::start_paused(|config| {
        config.feed.keepalive = keepalive;
        config.session.feed_interval = status_every;
    })
    .await;
    let ana = server.user("ana").await;
    let mut raw = RawFeed::open(&ana, "").await;
    let opened = tokio::time::Instant::now();
    // Three keepalives' worth of an idle stream: a status every second, nothing else.
    let (mut statuses, mut comments) = (0, 0);
    while opened.elapsed() < keepalive * 3 {
        let line = raw.line().await.expect("the feed is still open");
        if line.starts_with(':') {
            comments += 1;
        }
        if line == format!("event: {EVENT_SESSION}") {
            statuses += 1;
        }
    }
    assert_eq!(comments, 0);
    // The opening's status, then one a second.
    assert!(
        statuses >= 9,
        "{statuses} statuses in {:?}",
        opened.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn the_feed_resumes_across_a_server_restart() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let ops = ana.create_room("ops").await.room.id;
    bo.join(ops).await;
    let mut feed = bo.feed(None);
    feed.expect(EVENT_SESSION).await;
    let before = post_message(&ana, ops, "m1", "before").await;
    assert_eq!(next_message(&mut feed).await.id, before.id);

    let server = server.restart().await;
    // The old stream ends cleanly on shutdown, so a client reconnects rather than hangs.
    ended(&mut feed).await;
    let (ana, bo) = (ana.at(&server), bo.at(&server));
    let after = post_message(&ana, ops, "m2", "after the restart").await;
    let mut feed = bo.feed(Some(&before.id.to_string()));
    assert_eq!(next_message(&mut feed).await.id, after.id, "replayed");
    let live = post_message(&ana, ops, "m3", "live again").await;
    assert_eq!(next_message(&mut feed).await.id, live.id, "live");
    server.stop().await;
}

use crate::on_both;

use tidings_store::{Inserted, Message, NewMessage, Replayed, Store, StoreError, User};

fn new(room: i64, author: &User, client_id: Option<&str>, body: &str, sent_at: i64) -> NewMessage {
    NewMessage {
        room_id: room,
        author_id: author.id,
        client_id: client_id.map(str::to_owned),
        body: body.to_owned(),
        sent_at,
        reply_to: None,
        attachments: Vec::new(),
    }
}

async fn say(store: &Store, room: i64, author: &User, body: &str) -> Message {
    match store
        .insert_message(new(room, author, None, body, 3_000))
        .await
        .unwrap()
    {
        Inserted::New(m) => m,
        other => panic!("expected a new message, got {other:?}"),
    }
}

fn ids(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

fn log_ids(entries: &[Replayed]) -> Vec<i64> {
    entries.iter().map(Replayed::id).collect()
}

async fn history_pages_backwards_without_overlap(store: Store) {
    let ana = super::user(&store, "ana").await;
    let general = super::room(&store, "general", &ana).await;
    let other = super::room(&store, "other", &ana).await;
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(say(&store, general.id, &ana, &format!("m{i}")).await.id);
        say(&store, other.id, &ana, "noise").await;
    }

    let newest = store.history(general.id, None, 4).await.unwrap();
    assert_eq!(ids(&newest), sent[6..]);
    assert_eq!(newest[0].body, "m6");
    assert_eq!(newest[0].author.name, "ana");
    let middle = store
        .history(general.id, Some(newest[0].id), 4)
        .await
        .unwrap();
    assert_eq!(ids(&middle), sent[2..6]);
    let oldest = store
        .history(general.id, Some(middle[0].id), 4)
        .await
        .unwrap();
    assert_eq!(ids(&oldest), sent[..2]);
    assert!(
        store
            .history(general.id, Some(oldest[0].id), 4)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(&store.history(general.id, None, 100).await.unwrap()),
        sent
    );
    assert!(store.history(general.id, None, 0).await.unwrap().is_empty());
    assert!(store.history(999, None, 10).await.unwrap().is_empty());
}

async fn messages_since_covers_only_the_users_rooms(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let shared = super::room(&store, "shared", &ana).await;
    store.join_room(shared.id, bob.id, 1).await.unwrap();
    let private = super::room(&store, "private", &ana).await;
    let (dm, _) = store.open_dm(ana.id, bob.id, 1).await.unwrap();

    let a = say(&store, shared.id, &ana, "a").await;
    let _p = say(&store, private.id, &ana, "p").await;
    let d = say(&store, dm.id, &ana, "d").await;
    let b = say(&store, shared.id, &bob, "b").await;

    assert_eq!(
        log_ids(&store.messages_since(bob.id, 0, 100).await.unwrap()),
        [a.id, d.id, b.id]
    );
    assert_eq!(
        log_ids(&store.messages_since(bob.id, a.id, 100).await.unwrap()),
        [d.id, b.id]
    );
    assert_eq!(
        log_ids(&store.messages_since(bob.id, 0, 2).await.unwrap()),
        [a.id, d.id]
    );
    assert!(
        store
            .messages_since(bob.id, b.id, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.messages_since(ana.id, 0, 100).await.unwrap().len(), 4);
    assert_eq!(store.latest_message_id().await.unwrap(), b.id);

    // Leaving a room stops its messages from being caught up on.
    store.leave_room(shared.id, bob.id).await.unwrap();
    assert_eq!(
        log_ids(&store.messages_since(bob.id, 0, 100).await.unwrap()),
        [d.id]
    );
}

async fn a_resent_message_is_stored_once(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let general = super::room(&store, "general", &ana).await;
    store.join_room(general.id, bob.id, 1).await.unwrap();

    let mut followed = super::Followed::start(&store);

    let first = match store
        .insert_message(new(general.id, &ana, Some("c1"), "hello", 10))
        .await
        .unwrap()
    {
        Inserted::New(m) => m,
        other => panic!("expected new, got {other:?}"),
    };
    assert_eq!(first.client_id.as_deref(), Some("c1"));
    assert_eq!(first.sent_at, 10);

    // A retry, even with a different body, returns the stored message and stores nothing.
    match store
        .insert_message(new(general.id, &ana, Some("c1"), "hello again", 20))
        .await
        .unwrap()
    {
        Inserted::Duplicate(m) => assert_eq!(m, first),
        other => panic!("expected duplicate, got {other:?}"),
    }
    // The same client id from another author is another message.
    let bobs = store
        .insert_message(new(general.id, &bob, Some("c1"), "mine", 30))
        .await
        .unwrap();
    let Inserted::New(bobs) = bobs else {
        panic!("expected new, got {bobs:?}")
    };

    let history = store.history(general.id, None, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], first);
    // The log holds the new messages only: after them comes the next one, not the duplicate.
    let next = say(&store, general.id, &bob, "next").await;
    assert_eq!(followed.until(3).await, [first.id, bobs.id, next.id]);
}

async fn mentions_of_members_are_recorded(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "Bob").await;
    let eve = super::user(&store, "eve").await;
    let general = super::room(&store, "general", &ana).await;
    store.join_room(general.id, bob.id, 1).await.unwrap();

    // eve is not in the room and "nobody" does not exist: neither is mentioned.
    let m = say(&store, general.id, &ana, "@bob @eve @nobody @ana and @BOB.").await;
    let mut expected = vec![ana.id, bob.id];
    expected.sort_unstable();
    assert_eq!(m.mentions, expected);
    assert!(!m.mentions.contains(&eve.id));
    let stored = store.history(general.id, None, 1).await.unwrap();
    assert_eq!(stored[0].mentions, expected);
    assert_eq!(
        store.messages_since(bob.id, 0, 10).await.unwrap()[0]
            .message()
            .mentions,
        expected
    );

    let plain = say(&store, general.id, &ana, "no one").await;
    assert!(plain.mentions.is_empty());
}

async fn only_members_may_post(store: Store) {
    let ana = super::user(&store, "ana").await;
    let eve = super::user(&store, "eve").await;
    let general = super::room(&store, "general", &ana).await;

    let latest = store.latest_message_id().await.unwrap();
    let mut followed = super::Followed::start(&store);
    assert!(matches!(
        store
            .insert_message(new(general.id, &eve, None, "hi", 1))
            .await,
        Err(StoreError::NotAllowed)
    ));
    assert!(matches!(
        store.insert_message(new(999, &ana, None, "hi", 1)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.latest_message_id().await.unwrap(), latest);
    // Nothing refused reached the log: the first message it holds is the next one stored.
    let next = say(&store, general.id, &ana, "next").await;
    assert_eq!(followed.until(1).await, [next.id]);
}

/// Many tasks sending at once: the log's follower gets every message once, in id order. How the
/// writes batch depends on timing here; the deterministic batching test is in the crate itself.
async fn concurrent_inserts_reach_the_follower_in_id_order(store: Store) {
    let ana = super::user(&store, "ana").await;
    let general = super::room(&store, "general", &ana).await;
    let commits_before = store.commits();
    let observed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let observer = std::sync::Arc::clone(&observed);
    store
        .observe_commits(move |commit| observer.lock().unwrap().push(commit))
        .unwrap();
    assert!(matches!(
        store.observe_commits(|_| {}),
        Err(StoreError::NotAllowed)
    ));

    let mut followed = super::Followed::start(&store);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = store.clone();
        let msg = new(
            general.id,
            &ana,
            Some(&format!("c{i}")),
            &format!("m{i}"),
            i,
        );
        tasks.spawn(async move { store.insert_message(msg).await });
    }
    let mut replied = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap().unwrap() {
            Inserted::New(m) => replied.push(m.id),
            other => panic!("expected new, got {other:?}"),
        }
    }
    replied.sort_unstable();

    let seen = followed.until(200).await;
    assert_eq!(seen.len(), 200);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "followed out of order"
    );
    assert_eq!(seen, replied);
    let commits = store.commits() - commits_before;
    assert!((1..=200).contains(&commits));
    // A commit is observed before its writes are answered: the observer saw each of those
    // commits, and every message in exactly one of them.
    let observed = observed.lock().unwrap().clone();
    assert_eq!(observed.len() as u64, commits);
    assert_eq!(observed.iter().map(|c| c.writes).sum::<usize>(), 200);
    assert!(observed.iter().all(|c| c.writes > 0 && !c.took.is_zero()));
    assert_eq!(
        store.history(general.id, None, 500).await.unwrap().len(),
        200
    );
}

async fn queued_messages_commit_in_queue_order_however_they_are_awaited(store: Store) {
    let ana = super::user(&store, "ana").await;
    let room = super::room(&store, "general", &ana).await;
    let mut queued = Vec::new();
    for i in 0..20 {
        let body = format!("m{i}");
        queued.push(
            store
                .queue_message(new(room.id, &ana, None, &body, 3_000))
                .await
                .unwrap(),
        );
    }
    // Await them newest first: the ids still follow the order they were queued in.
    let mut stored = Vec::new();
    while let Some(next) = queued.pop() {
        match next.await.unwrap() {
            Inserted::New(m) => stored.push(m),
            other => panic!("expected a new message, got {other:?}"),
        }
    }
    stored.reverse();
    let bodies: Vec<String> = stored.iter().map(|m| m.body.clone()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies, expected);
    assert!(stored.windows(2).all(|w| w[0].id < w[1].id));
}

/// Everything a batch can hold, queued at once so it is likely to commit as one batch (whatever
/// the batching, each answer must be the same): new messages with and without mentions, a retry
/// of one of them in the same batch, a retry of a message stored before, a non-member's message
/// and one to a room that does not exist. Only the new ones are stored, under consecutive ids
/// in queue order, each with its own mentions.
async fn one_batch_of_every_kind_answers_each_message_alone(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let eve = super::user(&store, "eve").await;
    let general = super::room(&store, "general", &ana).await;
    store.join_room(general.id, bob.id, 1).await.unwrap();
    let mut followed = super::Followed::start(&store);
    let before = say(&store, general.id, &bob, "before").await;
    let earlier = match store
        .insert_message(new(general.id, &bob, Some("b1"), "stored before", 5))
        .await
        .unwrap()
    {
        Inserted::New(m) => m,
        other => panic!("expected new, got {other:?}"),
    };

    let batch = [
        new(general.id, &ana, Some("a1"), "hi @bob", 10),
        new(general.id, &eve, Some("e1"), "let me in", 11),
        new(general.id, &ana, Some("a1"), "hi @bob (again)", 12),
        new(999, &ana, Some("a2"), "nowhere", 13),
        new(general.id, &bob, Some("b1"), "stored before, again", 14),
        new(general.id, &bob, None, "@ana @eve and @bob", 15),
    ];
    let mut queued = Vec::new();
    for msg in batch {
        queued.push(store.queue_message(msg).await.unwrap());
    }
    let mut answers = Vec::new();
    for answer in queued {
        answers.push(answer.await);
    }

    let Ok(Inserted::New(first)) = &answers[0] else {
        panic!("expected new, got {:?}", answers[0])
    };
    assert_eq!(first.mentions, [bob.id]);
    assert_eq!(first.author.name, "ana");
    assert!(matches!(answers[1], Err(StoreError::NotAllowed)));
    match &answers[2] {
        Ok(Inserted::Duplicate(m)) => assert_eq!(m, first),
        other => panic!("expected the first again, got {other:?}"),
    }
    assert!(matches!(answers[3], Err(StoreError::NotFound)));
    match &answers[4] {
        Ok(Inserted::Duplicate(m)) => assert_eq!(m, &earlier),
        other => panic!("expected the earlier message, got {other:?}"),
    }
    let Ok(Inserted::New(last)) = &answers[5] else {
        panic!("expected new, got {:?}", answers[5])
    };
    let mut both = vec![ana.id, bob.id];
    both.sort_unstable();
    assert_eq!(last.mentions, both, "eve is not in the room");
    assert_eq!(
        last.id,
        first.id + 1,
        "the new ones are numbered without a gap"
    );

    assert_eq!(
        followed.until(4).await,
        [before.id, earlier.id, first.id, last.id]
    );
    let history = store.history(general.id, None, 10).await.unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(&history[2], first);
    assert_eq!(&history[3], last);
}

on_both!(
    history_pages_backwards_without_overlap,
    messages_since_covers_only_the_users_rooms,
    a_resent_message_is_stored_once,
    mentions_of_members_are_recorded,
    only_members_may_post,
    concurrent_inserts_reach_the_follower_in_id_order,
    queued_messages_commit_in_queue_order_however_they_are_awaited,
    one_batch_of_every_kind_answers_each_message_alone
);

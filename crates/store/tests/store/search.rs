//! Full-text search: what is found, in whose rooms, and what is not found once edited away or
//! deleted.

use crate::on_both;

use tidings_proto::v1::search::Query;
use tidings_store::{Change, Message, MessageChange, NewMessage, Search, Store, User};

use super::change::say;

/// A search of `user`'s rooms for what a person typed, as the server asks it.
fn search(user: &User, typed: &str) -> Search {
    let query = Query::parse(typed).unwrap();
    Search {
        user: user.id,
        room: None,
        before: None,
        limit: 20,
        fts5: query.fts5(),
        tsquery: query.tsquery(),
    }
}

async fn found(store: &Store, search: Search) -> Vec<String> {
    store
        .search(search)
        .await
        .unwrap()
        .into_iter()
        .map(|m: Message| m.body)
        .collect()
}

on_both!(
    finds_every_word_newest_first,
    searches_only_the_users_rooms,
    edits_and_deletions_change_what_is_found,
    pages_go_back_with_before,
    what_is_indexed_in_bulk_is_found_as_it_now_is,
);

async fn finds_every_word_newest_first(store: Store) {
    let ana = super::user(&store, "ana").await;
    let room = super::room(&store, "ops", &ana).await;
    for body in [
        "Deploy the release tonight",
        "no match here",
        "the deployment went fine",
        "DEPLOY again? the release notes first",
    ] {
        say(&store, room.id, &ana, body).await;
    }
    assert_eq!(
        found(&store, search(&ana, "deploy")).await,
        [
            "DEPLOY again? the release notes first",
            "Deploy the release tonight"
        ],
        "whole words, any letter case, newest first"
    );
    assert_eq!(
        found(&store, search(&ana, "release deploy")).await,
        [
            "DEPLOY again? the release notes first",
            "Deploy the release tonight"
        ]
    );
    assert_eq!(
        found(&store, search(&ana, "deploy fine")).await,
        Vec::<String>::new(),
        "every word must be in the message"
    );
    assert_eq!(
        found(&store, search(&ana, "deploy*")).await,
        [
            "DEPLOY again? the release notes first",
            "the deployment went fine",
            "Deploy the release tonight"
        ],
        "a starred word is a prefix"
    );
    assert_eq!(
        found(&store, search(&ana, "\"the (notes) -first")).await,
        ["DEPLOY again? the release notes first"],
        "what looks like syntax is text"
    );
}

async fn searches_only_the_users_rooms(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let ops = super::room(&store, "ops", &ana).await;
    let secret = super::room(&store, "secret", &bob).await;
    store.join_room(ops.id, bob.id, 1).await.unwrap();
    say(&store, ops.id, &ana, "budget in ops").await;
    say(&store, secret.id, &bob, "budget in secret").await;
    let (dm, _) = store.open_dm(ana.id, bob.id, 1).await.unwrap();
    say(&store, dm.id, &bob, "budget between us").await;

    assert_eq!(
        found(&store, search(&ana, "budget")).await,
        ["budget between us", "budget in ops"],
        "never a hit from a room ana is not in"
    );
    assert_eq!(
        found(&store, search(&bob, "budget")).await,
        ["budget between us", "budget in secret", "budget in ops"]
    );
    let only_ops = Search {
        room: Some(ops.id),
        ..search(&bob, "budget")
    };
    assert_eq!(found(&store, only_ops).await, ["budget in ops"]);
    let not_hers = Search {
        room: Some(secret.id),
        ..search(&ana, "budget")
    };
    assert!(
        found(&store, not_hers).await.is_empty(),
        "asking for a room one is not in finds nothing"
    );
    // Leaving a room takes its messages out of one's search.
    store.leave_room(ops.id, bob.id).await.unwrap();
    assert_eq!(
        found(&store, search(&bob, "budget")).await,
        ["budget between us", "budget in secret"]
    );
}

async fn edits_and_deletions_change_what_is_found(store: Store) {
    let ana = super::user(&store, "ana").await;
    let room = super::room(&store, "ops", &ana).await;
    let typo = say(&store, room.id, &ana, "meeting at teh office").await;
    let gone = say(&store, room.id, &ana, "the office wifi password is hunter2").await;
    let change = |message: &Message, change: Change| MessageChange {
        message_id: message.id,
        user_id: ana.id,
        change,
        may_delete_any: false,
        at: 50,
    };
    store
        .change_message(change(
            &typo,
            Change::Edit {
                body: "meeting at the office".to_owned(),
            },
        ))
        .await
        .unwrap();
    assert!(found(&store, search(&ana, "teh")).await.is_empty());
    assert_eq!(
        found(&store, search(&ana, "meeting")).await,
        ["meeting at the office"]
    );
    store
        .change_message(change(&gone, Change::Delete))
        .await
        .unwrap();
    assert!(
        found(&store, search(&ana, "hunter2")).await.is_empty(),
        "a deleted message's words are gone"
    );
    assert_eq!(
        found(&store, search(&ana, "office")).await,
        ["meeting at the office"]
    );
}

async fn pages_go_back_with_before(store: Store) {
    let ana = super::user(&store, "ana").await;
    let room = super::room(&store, "ops", &ana).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(say(&store, room.id, &ana, &format!("standup {i}")).await.id);
    }
    let first = store
        .search(Search {
            limit: 2,
            ..search(&ana, "standup")
        })
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|m| m.id).collect::<Vec<_>>(),
        [ids[4], ids[3]]
    );
    let next = store
        .search(Search {
            limit: 2,
            before: Some(ids[3]),
            ..search(&ana, "standup")
        })
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|m| m.id).collect::<Vec<_>>(),
        [ids[2], ids[1]]
    );
}

/// More messages than SQLite indexes at a time (1,024), some changed before and some after they
/// were indexed: a search finds each as it now is, the newest ones too.
async fn what_is_indexed_in_bulk_is_found_as_it_now_is(store: Store) {
    let ana = super::user(&store, "ana").await;
    let room = super::room(&store, "ops", &ana).await;
    let mut queued = Vec::new();
    for i in 0..1100 {
        let body = match i {
            3 | 1090 => format!("needle {i}"),
            _ => format!("hay {i}"),
        };
        queued.push(
            store
                .queue_message(NewMessage {
                    room_id: room.id,
                    author_id: ana.id,
                    body,
                    sent_at: 5,
                    ..NewMessage::default()
                })
                .await
                .unwrap(),
        );
    }
    let mut ids = Vec::new();
    for sent in queued {
        match sent.await.unwrap() {
            tidings_store::Inserted::New(m) => ids.push(m.id),
            other => panic!("expected a new message, got {other:?}"),
        }
    }
    let edit = |id: i64, body: &str| MessageChange {
        message_id: id,
        user_id: ana.id,
        change: Change::Edit {
            body: body.to_owned(),
        },
        may_delete_any: false,
        at: 50,
    };
    // One indexed long ago, one not yet: each is found by its new words only.
    store
        .change_message(edit(ids[3], "hay again"))
        .await
        .unwrap();
    store
        .change_message(edit(ids[1095], "needle, edited in"))
        .await
        .unwrap();
    assert_eq!(
        found(&store, search(&ana, "needle")).await,
        ["needle, edited in", "needle 1090"]
    );
    assert_eq!(found(&store, search(&ana, "again")).await, ["hay again"]);
    let hay = store
        .search(Search {
            limit: 2000,
            ..search(&ana, "hay")
        })
        .await
        .unwrap();
    assert_eq!(hay.len(), 1098);
}

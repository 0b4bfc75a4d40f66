//! Edits, deletions and reactions: who may make them, what they leave, and that each is an entry
//! of the log a replay and the follower hand on.

use crate::on_both;

use tidings_store::{
    Change, Changed, Inserted, MAX_REACTIONS_PER_MESSAGE, Message, MessageChange, NewMessage,
    Replayed, Store, StoreError, User,
};

pub(crate) async fn say(store: &Store, room: i64, author: &User, body: &str) -> Message {
    let sent = store
        .insert_message(NewMessage {
            room_id: room,
            author_id: author.id,
            client_id: None,
            body: body.to_owned(),
            sent_at: 5,
            reply_to: None,
            attachments: Vec::new(),
        })
        .await
        .unwrap();
    match sent {
        Inserted::New(m) => m,
        other => panic!("expected a new message, got {other:?}"),
    }
}

fn by(user: &User, message: &Message, change: Change, at: i64) -> MessageChange {
    MessageChange {
        message_id: message.id,
        user_id: user.id,
        change,
        may_delete_any: false,
        at,
    }
}

fn react(emoji: &str) -> Change {
    Change::React {
        emoji: emoji.to_owned(),
    }
}

/// The change's log id and the message as it now is; panics when nothing changed.
async fn logged(store: &Store, change: MessageChange) -> (i64, Message) {
    match store.change_message(change).await {
        Ok(Changed::Logged { id, message }) => (id, message),
        other => panic!("expected a logged change, got {other:?}"),
    }
}

async fn unchanged(store: &Store, change: MessageChange) -> Message {
    match store.change_message(change).await {
        Ok(Changed::Unchanged(message)) => message,
        other => panic!("expected no change, got {other:?}"),
    }
}

async fn refused(store: &Store, change: MessageChange) -> StoreError {
    match store.change_message(change).await {
        Err(err) => err,
        Ok(changed) => panic!("expected a refusal, got {changed:?}"),
    }
}

async fn edits_deletes_and_reactions_are_entries_of_the_log(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let cy = super::user(&store, "cy").await;
    let room = super::room(&store, "general", &ana).await;
    store.join_room(room.id, bob.id, 1).await.unwrap();
    let hello = say(&store, room.id, &ana, "hello @bob").await;
    let hi = say(&store, room.id, &bob, "hi").await;
    assert_eq!(hello.mentions, [bob.id]);
    let mut followed = super::Followed::start(&store);
    let mut log = Vec::new();

    // An edit keeps the time it was sent, says when it was edited, and finds its mentions anew.
    let edit = |body: &str| Change::Edit {
        body: body.to_owned(),
    };
    let (id, edited) = logged(&store, by(&ana, &hello, edit("hello @ana, not @bob?"), 10)).await;
    assert!(id > hi.id, "a change comes after every message before it");
    log.push(id);
    assert_eq!(edited.body, "hello @ana, not @bob?");
    assert_eq!(
        (edited.sent_at, edited.edited_at, edited.deleted_at),
        (5, Some(10), None)
    );
    assert_eq!(edited.mentions, [ana.id, bob.id]);
    let (id, edited) = logged(&store, by(&ana, &hello, edit("hello all"), 11)).await;
    log.push(id);
    assert!(edited.mentions.is_empty());
    let bobs_rooms = store.rooms_of(bob.id).await.unwrap();
    assert_eq!(
        bobs_rooms[0].unread_mentions, 0,
        "an edit that drops a mention drops it from the counts"
    );
    unchanged(&store, by(&ana, &hello, edit("hello all"), 12)).await;

    // Only the author edits; only members change anything; a missing message is not found.
    assert!(matches!(
        refused(&store, by(&bob, &hello, edit("mine now"), 13)).await,
        StoreError::NotAllowed
    ));
    assert!(matches!(
        refused(&store, by(&cy, &hello, react("👍"), 13)).await,
        StoreError::NotAllowed
    ));
    let mut missing = by(&ana, &hello, edit("?"), 13);
    missing.message_id = 9999;
    assert!(matches!(
        refused(&store, missing).await,
        StoreError::NotFound
    ));

    // Reactions: each emoji once, in the order first added, with who added it in order.
    for (who, emoji, at) in [(&bob, "👍", 20), (&ana, "🎉", 21), (&ana, "👍", 22)] {
        log.push(logged(&store, by(who, &hello, react(emoji), at)).await.0);
    }
    let again = unchanged(&store, by(&bob, &hello, react("👍"), 23)).await;
    let shown: Vec<(&str, &[i64])> = again
        .reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.users.as_slice()))
        .collect();
    assert_eq!(
        shown,
        [("👍", &[bob.id, ana.id][..]), ("🎉", &[ana.id][..])]
    );
    let unreact = Change::Unreact {
        emoji: "🎉".to_owned(),
    };
    let (id, message) = logged(&store, by(&ana, &hello, unreact.clone(), 24)).await;
    log.push(id);
    assert_eq!(message.reactions.len(), 1);
    unchanged(&store, by(&ana, &hello, unreact, 25)).await;

    // Deleting: the author or an owner; the body, mentions and reactions go, a placeholder stays.
    assert!(matches!(
        refused(&store, by(&bob, &hello, Change::Delete, 30)).await,
        StoreError::NotAllowed
    ));
    let mut as_owner = by(&bob, &hello, Change::Delete, 31);
    as_owner.may_delete_any = true;
    let (id, deleted) = logged(&store, as_owner).await;
    log.push(id);
    assert_eq!(
        (deleted.body.as_str(), deleted.deleted_at, deleted.edited_at),
        ("", Some(31), None)
    );
    assert!(deleted.mentions.is_empty() && deleted.reactions.is_empty());
    let audit = store.audit_log(10).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .map(|e| (e.at, e.actor, e.action, e.user, e.message))
            .collect::<Vec<_>>(),
        [(
            31,
            Some(bob.id),
            tidings_store::AuditAction::MessageDeleted,
            Some(ana.id),
            Some(hello.id)
        )],
        "an owner deleting someone else's message is audited"
    );
    unchanged(&store, by(&ana, &hello, Change::Delete, 32)).await;
    for change in [edit("back"), react("👍")] {
        assert!(matches!(
            refused(&store, by(&ana, &hello, change, 33)).await,
            StoreError::NotAllowed
        ));
    }
    let page = store.history(room.id, None, 10).await.unwrap();
    assert_eq!(page[0], deleted, "history shows the message as it now is");

    // A replay from before the changes hands each on, in order, with the message as it now is;
    // from the start, the messages as they now are come first.
    let replay = store.messages_since(bob.id, hi.id, 100).await.unwrap();
    assert_eq!(replay.iter().map(Replayed::id).collect::<Vec<_>>(), log);
    assert!(
        replay
            .iter()
            .all(|entry| matches!(entry, Replayed::Changed { message, .. } if *message == deleted))
    );
    let start = store.messages_since(bob.id, 0, 2).await.unwrap();
    assert_eq!(
        start,
        [
            Replayed::Message(deleted.clone()),
            Replayed::Message(hi.clone())
        ]
    );
    assert!(
        store
            .messages_since(cy.id, 0, 100)
            .await
            .unwrap()
            .is_empty(),
        "never a change in a room one is not in"
    );
    let last = *log.last().unwrap();
    assert_eq!(store.latest_message_id().await.unwrap(), last);

    // The follower hands each change on in log order, and messages go on after them.
    let next = say(&store, room.id, &bob, "next").await;
    assert!(next.id > last);
    let mut expected: Vec<String> = log
        .iter()
        .map(|id| format!("changed {id} of {}", hello.id))
        .collect();
    expected.push(format!("message {}", next.id));
    // PostgreSQL's follower also hands on what came before it started.
    let entries = followed
        .entries_through(&expected[expected.len() - 1])
        .await;
    assert_eq!(entries[entries.len() - expected.len()..], expected);
}

async fn a_message_holds_a_bounded_number_of_emoji(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let room = super::room(&store, "general", &ana).await;
    store.join_room(room.id, bob.id, 1).await.unwrap();
    let hello = say(&store, room.id, &ana, "hello").await;
    let emoji: Vec<String> = (0..=MAX_REACTIONS_PER_MESSAGE)
        .map(|i| char::from_u32(0x1F600 + i as u32).unwrap().to_string())
        .collect();
    for (i, e) in emoji[..MAX_REACTIONS_PER_MESSAGE].iter().enumerate() {
        logged(&store, by(&ana, &hello, react(e), i as i64)).await;
    }
    let one_more = by(&ana, &hello, react(&emoji[MAX_REACTIONS_PER_MESSAGE]), 50);
    assert!(matches!(
        refused(&store, one_more).await,
        StoreError::TooMany(_)
    ));
    // One already there still takes more people.
    let (_, message) = logged(&store, by(&bob, &hello, react(&emoji[0]), 51)).await;
    assert_eq!(message.reactions.len(), MAX_REACTIONS_PER_MESSAGE);
    assert_eq!(message.reactions[0].users, [ana.id, bob.id]);
}

async fn reply(
    store: &Store,
    room: i64,
    author: &User,
    body: &str,
    to: i64,
) -> Result<Message, StoreError> {
    let sent = store
        .insert_message(NewMessage {
            room_id: room,
            author_id: author.id,
            client_id: None,
            body: body.to_owned(),
            sent_at: 6,
            reply_to: Some(to),
            attachments: Vec::new(),
        })
        .await?;
    match sent {
        Inserted::New(m) => Ok(m),
        other => panic!("expected a new message, got {other:?}"),
    }
}

async fn a_reply_quotes_its_message_as_it_now_is_and_mentions_its_author(store: Store) {
    let ana = super::user(&store, "ana").await;
    let bob = super::user(&store, "bob").await;
    let room = super::room(&store, "general", &ana).await;
    let other = super::room(&store, "other", &ana).await;
    store.join_room(room.id, bob.id, 1).await.unwrap();
    let question = say(&store, room.id, &bob, "lunch?").await;
    let elsewhere = say(&store, other.id, &ana, "elsewhere").await;

    let answer = reply(&store, room.id, &ana, "yes", question.id)
        .await
        .unwrap();
    let quote = answer.reply_to.clone().expect("a quote");
    assert_eq!(
        (
            quote.id,
            quote.author.id,
            quote.body.as_str(),
            quote.deleted
        ),
        (question.id, bob.id, "lunch?", false)
    );
    assert_eq!(
        answer.mentions,
        [bob.id],
        "a reply mentions whom it answers"
    );
    let own = reply(&store, room.id, &ana, "and 1pm", answer.id)
        .await
        .unwrap();
    assert!(own.mentions.is_empty(), "answering oneself mentions no one");
    assert_eq!(
        store.rooms_of(bob.id).await.unwrap()[0].unread_mentions,
        1,
        "the reply counts for bob like a mention"
    );

    // Only a message of the same room, still there.
    for to in [elsewhere.id, 9999] {
        assert!(matches!(
            reply(&store, room.id, &ana, "?", to).await,
            Err(StoreError::NotInRoom)
        ));
    }

    // The quote follows its message: an edit shows, an edit of the reply keeps the mention, a
    // deletion empties it.
    let edit = |body: &str| Change::Edit {
        body: body.to_owned(),
    };
    logged(&store, by(&bob, &question, edit("lunch at 1?"), 7)).await;
    let (_, edited_answer) = logged(&store, by(&ana, &answer, edit("yes!"), 8)).await;
    assert_eq!(edited_answer.mentions, [bob.id]);
    assert_eq!(
        edited_answer.reply_to.as_ref().map(|q| q.body.as_str()),
        Some("lunch at 1?")
    );
    logged(&store, by(&bob, &question, Change::Delete, 9)).await;
    let page = store.history(room.id, None, 10).await.unwrap();
    let shown = page.iter().find(|m| m.id == answer.id).unwrap();
    let quote = shown.reply_to.as_ref().unwrap();
    assert!(quote.deleted && quote.body.is_empty());
    assert!(matches!(
        reply(&store, room.id, &ana, "too late", question.id).await,
        Err(StoreError::NotInRoom)
    ));
}

on_both!(
    edits_deletes_and_reactions_are_entries_of_the_log,
    a_message_holds_a_bounded_number_of_emoji,
    a_reply_quotes_its_message_as_it_now_is_and_mentions_its_author
);

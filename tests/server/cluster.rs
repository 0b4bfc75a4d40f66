//! Several server nodes on one PostgreSQL database: one group, one log, every node's clients
//! served from it.

use tidings_proto::v1::{ClientFrame, EVENT_MESSAGE, HistoryPage, MessageAlert, ServerFrame};
use tidings_tests::{Chat, Feed, TestServer, post_message};

/// The next `n` messages a chat connection receives, by id.
async fn messages(chat: &mut Chat, n: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        if let ServerFrame::Message(m) = chat
            .expect("a message", |f| matches!(f, ServerFrame::Message(_)))
            .await
        {
            got.push((m.id, m.body));
        }
    }
    got
}

/// The next `n` message alerts of a feed, by id.
async fn alerts(feed: &mut Feed, n: usize) -> Vec<i64> {
    let mut got = Vec::new();
    while got.len() < n {
        let alert: MessageAlert = feed.expect(EVENT_MESSAGE).await.json();
        got.push(alert.id);
    }
    got
}

/// Three nodes, three users each on their own node, posting in turn: every client — over the
/// WebSocket and over the SSE feed, whatever its node — receives every message once, in the
/// log's order, and the log has no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_every_node_get_every_message_once_in_the_logs_order() {
    let nodes = TestServer::cluster(3).await;
    let ana = nodes[0].user("ana").await;
    let bo = nodes[1].user("bo").await;
    let cy = nodes[2].user("cy").await;
    // A room made on one node is there on the others.
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;
    cy.join(room).await;

    let mut ana_chat = ana.chat().await;
    let mut bo_chat = bo.chat().await;
    let mut cy_chat = cy.chat().await;
    let mut cy_feed = cy.feed(None);
    // The feed is open once its first event (the session's status) has come.
    cy_feed.expect(tidings_proto::v1::EVENT_SESSION).await;

    let senders = [&ana, &bo, &cy];
    let mut sent = Vec::new();
    for i in 0..60 {
        let from = senders[i % 3];
        let m = post_message(from, room, &format!("c{i}"), &format!("m{i}")).await;
        sent.push((m.id, m.body));
    }
    let first = sent[0].0;
    let ids: Vec<i64> = sent.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (first..first + 60).collect::<Vec<_>>(),
        "the log has no gap"
    );

    assert_eq!(messages(&mut ana_chat, 60).await, sent);
    assert_eq!(messages(&mut bo_chat, 60).await, sent);
    assert_eq!(messages(&mut cy_chat, 60).await, sent);
    // cy's new-message feed, on node 2, too (the client's policy drops its own).
    assert_eq!(alerts(&mut cy_feed, ids.len()).await, ids);

    // History is the same read from any node.
    let page: HistoryPage = bo
        .get(&format!("/api/rooms/{room}/messages?limit=100"))
        .await;
    let stored: Vec<(i64, String)> = page.messages.into_iter().map(|m| (m.id, m.body)).collect();
    assert_eq!(stored, sent);
    for node in nodes {
        node.stop().await;
    }
}

/// A client that hops to another node resumes from its cursor there: it gets exactly what it
/// missed, and a send retried on the new node with the same client id is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hopping_nodes_resumes_from_its_cursor_and_a_retried_send_is_stored_once() {
    let nodes = TestServer::cluster(2).await;
    let ana = nodes[0].user("ana").await;
    let bo = nodes[0].user("bo").await;
    let room = ana.create_room("ops").await.room.id;
    bo.join(room).await;

    let mut bo_chat = bo.chat().await;
    let before = post_message(&ana, room, "c1", "before").await;
    assert_eq!(
        messages(&mut bo_chat, 1).await,
        [(before.id, "before".into())]
    );
    drop(bo_chat);

    // While bo is away, ana sends on node 1.
    let ana_there = ana.at(&nodes[1]);
    let missed = post_message(&ana_there, room, "c2", "missed").await;
    // bo comes back on node 1, from its cursor.
    let bo_there = bo.at(&nodes[1]);
    let mut chat = bo_there.chat().await;
    chat.send(&ClientFrame::Sync { since: before.id }).await;
    assert_eq!(messages(&mut chat, 1).await, [(missed.id, "missed".into())]);

    // A send retried on the other node (the ack was lost) is acknowledged as the same message.
    chat.send(&ClientFrame::Send {
        room,
        client_id: "b1".into(),
        body: "once".into(),
    })
    .await;
    let first = chat
        .expect("ack", |f| matches!(f, ServerFrame::Ack { .. }))
        .await;
    let again = post_message(&bo, room, "b1", "once").await;
    let ServerFrame::Ack { id, .. } = first else {
        unreachable!()
    };
    assert_eq!(again.id, id);
    let page: HistoryPage = ana.get(&format!("/api/rooms/{room}/messages")).await;
    let bodies: Vec<&str> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["before", "missed", "once"]);
    for node in nodes {
        node.stop().await;
    }
}

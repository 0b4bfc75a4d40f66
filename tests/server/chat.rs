//! Chatting: rooms, DMs, acks, idempotency, history across a restart.

use tidings_proto::v1::{ClientFrame, ServerFrame};
use tidings_tests::TestServer;

#[tokio::test]
async fn two_users_chat_in_a_room() {
    let server = TestServer::start().await;
    let ana = server.user("ana").await;
    let bo = server.user("bo").await;
    let room = ana.create_room("ops").await;
    bo.join(room.room.id).await;
    let mut ana_chat = ana.chat().await;
    let mut bo_chat = bo.chat().await;
    ana_chat
        .send(&ClientFrame::Send {
            room: room.room.id,
            client_id: "c1".into(),
            body: "hello @bo".into(),
        })
        .await;
    let ack = ana_chat
        .expect("ack", |f| matches!(f, ServerFrame::Ack { .. }))
        .await;
    let ServerFrame::Ack { client_id, id, .. } = ack else {
        unreachable!()
    };
    assert_eq!(client_id, "c1");
    let got = bo_chat
        .expect("message", |f| matches!(f, ServerFrame::Message(_)))
        .await;
    let ServerFrame::Message(m) = got else {
        unreachable!()
    };
    assert_eq!(m.id, id);
    assert_eq!(m.body, "hello @bo");
    assert_eq!(m.author.name, "ana");
    assert_eq!(m.mentions, vec![bo.user.id]);
    server.stop().await;
}

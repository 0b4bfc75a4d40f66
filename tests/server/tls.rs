//! TLS built in: `https://` and `wss://` from the server itself, with a certificate from a CA the
//! test makes, renewed while serving.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use tidings_proto::v1::{ClientFrame, ServerFrame};
use tidings_tests::tls::{Pair, TestCa, trusting};
use tidings_tests::{TestServer, WAIT, http_client};
use tokio::net::TcpStream;

/// The fingerprint of the certificate the server shows a new connection.
async fn shown(server: &TestServer, roots: &Arc<rustls::ClientConfig>) -> String {
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(roots));
    let name = ServerName::try_from("localhost").expect("a name");
    let tls = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let (_, connection) = tls.get_ref();
    let certs = connection.peer_certificates().expect("the server's chain");
    tidings_proto::certificate_fingerprint(&certs[0])
}

#[tokio::test]
async fn https_and_wss_are_served_with_hsts_and_plain_http_gets_nothing() {
    let ca = TestCa::new();
    let server = TestServer::start_tls(&ca.issue(), ca.pem()).await;
    assert!(server.url("").starts_with("https://"));

    let health = server
        .http()
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("https request");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        tidings_server::tls::HSTS
    );

    // The session cookie only goes back over TLS.
    let login = server
        .http()
        .post(server.url("/api/login"))
        .json(&serde_json::json!({"name": "owner", "password": tidings_tests::PASSWORD}))
        .send()
        .await
        .expect("login over https");
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // The chat channel over wss://, end to end: a message sent and acknowledged.
    let ana = server.user("ana").await;
    let room = ana.create_room("secure").await;
    let mut chat = ana.chat().await;
    chat.send(&ClientFrame::Send {
        room: room.room.id,
        client_id: "tls-1".into(),
        body: "over TLS".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await;
    chat.expect("ack", |f| matches!(f, ServerFrame::Ack { .. }))
        .await;
    assert_eq!(ana.whole_history(room.room.id).await.len(), 1);

    // Plain HTTP to the TLS port gets no answer, and the server goes on serving.
    let plain = http_client()
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // A client that does not trust the CA is refused at the handshake.
    let stranger = trusting(Pair::self_signed().cert_pem.as_str());
    let refused = tidings_client::http_builder()
        .use_preconfigured_tls(rustls::ClientConfig::clone(&stranger))
        .timeout(WAIT)
        .build()
        .unwrap()
        .get(server.url("/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "an untrusted certificate was accepted");
    let again = server.http().get(server.url("/healthz")).send().await;
    assert_eq!(again.expect("still serving").status(), 200);
}

#[tokio::test]
async fn a_renewed_certificate_is_served_from_the_next_connection_on() {
    let ca = TestCa::new();
    let first = ca.issue();
    let server = TestServer::start_tls(&first, ca.pem()).await;
    let roots = trusting(ca.pem());
    assert_eq!(shown(&server, &roots).await, first.fingerprint());

    // A connection opened before the renewal.
    let ana = server.user("ana").await;
    let room = ana.create_room("renewal").await;
    let mut chat = ana.chat().await;

    let renewed = ca.issue();
    assert_ne!(renewed.fingerprint(), first.fingerprint());
    renewed.write(&server.config.data_dir);
    // The server looks at its files every few seconds: new handshakes show the new one by then.
    let deadline = tokio::time::Instant::now() + WAIT + tidings_server::tls::WATCH_EVERY;
    loop {
        let now = shown(&server, &roots).await;
        if now == renewed.fingerprint() {
            break;
        }
        assert_eq!(now, first.fingerprint(), "neither certificate");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was not served in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The connection from before goes on.
    chat.send(&ClientFrame::Send {
        room: room.room.id,
        client_id: "after-renewal".into(),
        body: "still here".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await;
    chat.expect("ack", |f| matches!(f, ServerFrame::Ack { .. }))
        .await;
}

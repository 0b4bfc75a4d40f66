//! The client core and a server over TLS: a self-signed certificate is refused, with its
//! fingerprint, until the user pins it; a pinned certificate that changes is refused again; a
//! certificate from an authority the system trusts is believed as it is.

use std::sync::Arc;

use tidings_client::notify::RecordingNotifier;
use tidings_client::{Client, ClientError, ClientEvent};
use tidings_tests::tls::{Pair, TestCa};
use tidings_tests::{PASSWORD, TestClient, TestServer, WAIT, client_options, post_message};

/// A client core on the data dir `dir` (opened, not logged in), as `TestClient` holds one.
fn open(dir: tempfile::TempDir) -> TestClient {
    let notes = Arc::new(RecordingNotifier::new());
    let client = Client::open(&dir.path().join("client.db"), client_options(&notes)).unwrap();
    let events = client.events();
    TestClient {
        client,
        events,
        notes,
        dir,
    }
}

/// Online, a message sent and acknowledged, and someone else's message notified through the
/// feed: every connection the client core makes went through.
async fn everything_works(ana: &mut TestClient, server: &TestServer, room: i64) {
    ana.online().await;
    ana.client.send(room, "over TLS").await.unwrap();
    ana.until("the send's ack", |e| matches!(e, ClientEvent::Sent { .. }))
        .await;
    let owner = server.owner().await;
    post_message(&owner, room, "tls-1", "hello @ana").await;
    ana.until("a notification", |e| matches!(e, ClientEvent::Notified(_)))
        .await;
}

#[tokio::test]
async fn a_self_signed_server_is_refused_until_its_fingerprint_is_pinned() {
    let pair = Pair::self_signed();
    let server = TestServer::start_tls(&pair, &pair.cert_pem).await;
    let url = server.url("");
    let room = server.owner().await.create_room("pinned").await.room.id;
    drop(server.user("ana").await);

    // Refused, and told which certificate it was.
    let ana = open(tempfile::tempdir().unwrap());
    match ana.client.login(&url, "ana", PASSWORD).await {
        Err(ClientError::UntrustedCertificate {
            fingerprint,
            pinned: None,
            ..
        }) => assert_eq!(fingerprint, pair.fingerprint()),
        other => panic!("expected an untrusted certificate, got {other:?}"),
    }
    assert!(
        ana.client.account().is_none(),
        "an account from a refused login"
    );

    // Something that is not a fingerprint is not pinned.
    assert!(matches!(
        ana.client.trust_certificate(&url, "AB:CD").await,
        Err(ClientError::BadFingerprint(_))
    ));
    // Pinned as a person might type it (lower case); the login goes through.
    ana.client
        .trust_certificate(&url, &pair.fingerprint().to_lowercase())
        .await
        .unwrap();
    ana.client.login(&url, "ana", PASSWORD).await.unwrap();
    ana.client.join_room(room).await.unwrap();

    // The pin is kept: the app started again connects without asking.
    let mut ana = ana.reopen();
    everything_works(&mut ana, &server, room).await;
}

#[tokio::test]
async fn a_pinned_certificate_that_changes_is_refused_and_says_both() {
    let pair = Pair::self_signed();
    let server = TestServer::start_tls(&pair, &pair.cert_pem).await;
    let url = server.url("");
    drop(server.user("ana").await);
    let ana = open(tempfile::tempdir().unwrap());
    ana.client
        .trust_certificate(&url, &pair.fingerprint())
        .await
        .unwrap();
    ana.client.login(&url, "ana", PASSWORD).await.unwrap();

    // The server's certificate is replaced by another self-signed one.
    let other = Pair::self_signed();
    other.write(&server.config.data_dir);
    let deadline = tokio::time::Instant::now() + WAIT + tidings_server::tls::WATCH_EVERY;
    let refused = loop {
        let cy = open(tempfile::tempdir().unwrap());
        cy.client
            .trust_certificate(&url, &pair.fingerprint())
            .await
            .unwrap();
        match cy.client.login(&url, "ana", PASSWORD).await {
            Ok(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the new certificate was not served in time"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(err) => break err,
        }
    };
    match &refused {
        ClientError::UntrustedCertificate {
            fingerprint,
            pinned: Some(pinned),
            ..
        } => {
            assert_eq!(fingerprint, &other.fingerprint());
            assert_eq!(pinned, &pair.fingerprint());
            let said = refused.to_string();
            assert!(said.contains("changed"), "{said}");
        }
        other => panic!("expected a changed certificate, got {other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_that_changes_mid_session_is_told_and_trusting_it_reconnects() {
    let pair = Pair::self_signed();
    let server = TestServer::start_tls(&pair, &pair.cert_pem).await;
    let url = server.url("");
    let room = server.owner().await.create_room("renewed").await.room.id;
    drop(server.user("ana").await);
    let mut ana = open(tempfile::tempdir().unwrap());
    ana.client
        .trust_certificate(&url, &pair.fingerprint())
        .await
        .unwrap();
    ana.client.login(&url, "ana", PASSWORD).await.unwrap();
    ana.client.join_room(room).await.unwrap();
    ana.online().await;

    // The host makes a new certificate and restarts: the client's next connection meets it.
    let other = Pair::self_signed();
    other.write(&server.config.data_dir);
    let _server = server.restart().await;
    let told = ana
        .until("the refused certificate", |e| {
            matches!(e, ClientEvent::Untrusted { .. })
        })
        .await;
    let ClientEvent::Untrusted {
        server: at,
        fingerprint,
        pinned,
        ..
    } = told
    else {
        unreachable!()
    };
    assert_eq!(at, url);
    assert_eq!(fingerprint, other.fingerprint());
    assert_eq!(pinned, Some(pair.fingerprint()));

    // Trusted, the chat connects again with it, and what was written meanwhile goes out.
    ana.client
        .send(room, "after the new certificate")
        .await
        .unwrap();
    ana.client
        .trust_certificate(&url, &other.fingerprint())
        .await
        .unwrap();
    ana.until("the send's ack", |e| matches!(e, ClientEvent::Sent { .. }))
        .await;
}

/// Set in the environment of the child run: the directory with the CA's certificate and the
/// server's pair.
const CA_CHILD: &str = "TIDINGS_TLS_TEST_CA_CHILD";
/// This test's name in this binary, for the child's filter.
const CA_TEST: &str = "tls::a_certificate_from_a_ca_the_system_trusts_is_believed";

/// The system's roots are what the client core believes first; `SSL_CERT_FILE` stands in for
/// them. This process cannot set its own environment (no `unsafe`), so the test runs again in a
/// child whose `SSL_CERT_FILE` is a CA made here, and there logs in to a server whose certificate
/// that CA signed: no pin, no question.
#[test]
fn a_certificate_from_a_ca_the_system_trusts_is_believed() {
    if let Some(dir) = std::env::var_os(CA_CHILD) {
        let dir = std::path::PathBuf::from(dir);
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let pair = Pair {
            cert_pem: read("cert.pem"),
            key_pem: read("key.pem"),
        };
        let ca = read("ca.pem");
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let server = TestServer::start_tls(&pair, &ca).await;
                let room = server.owner().await.create_room("vouched").await.room.id;
                let mut ana = TestClient::new(&server, "ana").await;
                ana.client.join_room(room).await.unwrap();
                everything_works(&mut ana, &server, room).await;
            });
    }
    let ca = TestCa::new();
    let pair = ca.issue();
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("ca.pem", ca.pem()),
        ("cert.pem", pair.cert_pem.as_str()),
        ("key.pem", pair.key_pem.as_str()),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([CA_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CA_CHILD, dir.path())
        .env("SSL_CERT_FILE", dir.path().join("ca.pem"))
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(child.status.success(), "the child run failed:\n{said}");
    // It ran the test (a filter that matched nothing would pass too).
    assert!(said.contains("1 passed"), "{said}");
}

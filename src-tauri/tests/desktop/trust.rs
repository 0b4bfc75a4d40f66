//! Joining a server whose certificate is self-signed: the window shows its fingerprint to compare
//! and joins only once the person trusts it.

use tidings_tests::TestServer;
use tidings_tests::tls::Pair;

use tidings_tests::PASSWORD;

use crate::support::Window;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_a_self_signed_server_asks_with_its_fingerprint_first() {
    let pair = Pair::self_signed();
    let server = TestServer::start_tls(&pair, &pair.cert_pem).await;
    let invite: tidings_proto::v1::Invite = server.owner().await.post("/api/invites", &()).await;

    let window = Window::open("trust").await;
    window.click("setup-join").await;
    window.type_into("join-url", &server.url("")).await;
    window.type_into("join-name", "ana").await;
    window.type_into("join-password", PASSWORD).await;
    window.type_into("join-invite", &invite.code).await;
    window.click("join-submit").await;

    // Not joined: asked, with the certificate's fingerprint to compare.
    let shown = window.text("certificate-fingerprint").await;
    assert_eq!(shown, pair.fingerprint());
    window.shot("asked").await;
    assert!(
        server
            .owner()
            .await
            .get::<Vec<tidings_proto::v1::UserRef>>("/api/users")
            .await
            .iter()
            .all(|u| u.name != "ana"),
        "nobody registered before the certificate was trusted"
    );

    window.click("trust-certificate").await;
    window.online().await;
    window.shot("joined").await;
}

//! `GET /api/search` on the real server: hits of the user's rooms only, newest first, the words
//! marked, pages, and a clear refusal of what cannot be searched.

use reqwest::{Method, StatusCode};
use tidings_proto::v1::{ErrorBody, ErrorCode, SearchResults};
use tidings_tests::{Client, TestServer, marked, post_message};

async fn refused(client: &Client, path: &str) -> (StatusCode, ErrorBody) {
    let response = client.request(Method::GET, path).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn finds_words_in_the_users_rooms_only_newest_first_and_marked() {
    let server = TestServer::start().await;
    let ana = server.owner().await;
    let bob = server.user("bob").await;
    let ops = ana.create_room("ops").await;
    bob.join(ops.room.id).await;
    let secret = bob.create_room("secret").await;
    post_message(&ana, ops.room.id, "a1", "The budget is due Friday").await;
    post_message(&bob, secret.room.id, "b1", "secret budget numbers").await;
    post_message(&bob, ops.room.id, "b2", "budget? which BUDGET").await;
    let deleted = post_message(&bob, ops.room.id, "b3", "old budget draft").await;
    let response = bob
        .request(Method::DELETE, &format!("/api/messages/{}", deleted.id))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());

    let results: SearchResults = ana.get("/api/search?q=Budget").await;
    assert_eq!(
        marked(&results),
        ["[budget]? which [BUDGET]", "The [budget] is due Friday"],
        "ana's rooms only, the deleted message gone, newest first"
    );
    assert!(!results.has_more && !results.cached);
    assert_eq!(results.hits[0].message.author.name, "bob");

    let bobs: SearchResults = bob.get("/api/search?q=budget").await;
    assert_eq!(bobs.hits.len(), 3);
    let in_secret: SearchResults = bob
        .get(&format!("/api/search?q=budget&room={}", secret.room.id))
        .await;
    assert_eq!(marked(&in_secret), ["secret [budget] numbers"]);

    // Pages: one hit at a time, back from the last one seen.
    let first: SearchResults = bob.get("/api/search?q=budget&limit=1").await;
    assert!(first.has_more);
    let before = first.hits[0].message.id;
    let second: SearchResults = bob
        .get(&format!("/api/search?q=budget&limit=1&before={before}"))
        .await;
    assert!(second.hits[0].message.id < before);

    // A room that is not hers is refused, not searched.
    let (status, body) = refused(
        &ana,
        &format!("/api/search?q=budget&room={}", secret.room.id),
    )
    .await;
    assert_eq!(
        (status, body.code),
        (StatusCode::FORBIDDEN, ErrorCode::NotMember)
    );
}

#[tokio::test]
async fn a_query_that_cannot_be_searched_is_refused_clearly() {
    let server = TestServer::start().await;
    let ana = server.owner().await;
    for (query, says) in [
        ("%20%22*%22", "type a word"),
        ("a+b+c+d+e+f+g+h+i", "at most 8 words"),
        ("de*", "at least 3 letters"),
    ] {
        let (status, body) = refused(&ana, &format!("/api/search?q={query}")).await;
        assert_eq!(
            (status, body.code),
            (StatusCode::BAD_REQUEST, ErrorCode::Invalid)
        );
        assert!(body.message.contains(says), "{query}: {}", body.message);
    }
    let long = "x".repeat(201);
    let (status, _) = refused(&ana, &format!("/api/search?q={long}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let response = tidings_tests::http_client()
        .get(server.url("/api/search?q=budget"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

//! GIVEN the local server (the same routers as on Lambda, the file key ring, the authorizer's
//! part played locally), WHEN a client talks to it over HTTP, THEN the whole flow works:
//! sign in, get a token, verify it, rotate without breaking it.

use crate::common;

use crate::common::{client, get_token, sign_in, start, validate};
use chat_auth_host::FileStore;
use chat_auth_shared::store::rotate;
use serde_json::{Value, json};

const CONTACT: &str = "87b4d06c-abc2-e811-a9b0-000d3a10e09e";

#[tokio::test]
async fn sign_in_get_a_token_and_verify_it() {
    let server = start(&[]).await;
    let id = sign_in(
        &server,
        CONTACT,
        json!({"cart_value": "10000", "vip": "true"}),
    )
    .await;
    let r = get_token(&server, &id).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jwt");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let token = r.text().await.unwrap();
    let verdict = validate(&server, &token).await;
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["sub"], CONTACT);
    assert_eq!(verdict["context"]["msdyn_cartvalue"], "10000");

    // The form encoding is accepted too.
    let form: Value = client()
        .post(server.url("/validate"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(form["active"], true);
}

/// The widget refuses a token once `exp < now`, with no leeway; `/validate` agrees, even a
/// second after `exp` (the clock-skew leeway is 30 s). A token with under a minute left, a
/// non-GUID `sub` and no context is valid, with a warning for each.
#[tokio::test]
async fn validate_judges_expiry_as_the_widget_does_and_warns() {
    let server = start(&[]).await;
    let now = common::now();
    let token_expiring_at = |exp, sub| common::token_expiring_at(&server, sub, exp);
    let expired = validate(&server, &token_expiring_at(now - 2, CONTACT).await).await;
    assert_eq!(expired["active"], false, "{expired}");
    let codes: Vec<&str> = expired["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["expired"], "{expired}");

    let soon = validate(
        &server,
        &token_expiring_at(now + 30, "alice@contoso.com").await,
    )
    .await;
    assert_eq!(soon["active"], true, "{soon}");
    let mut warnings: Vec<&str> = soon["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    warnings.sort_unstable();
    assert_eq!(
        warnings,
        vec!["expires_soon", "no_lwicontexts", "sub_not_guid"],
        "{soon}"
    );
}

#[tokio::test]
async fn identity_is_required_and_must_verify() {
    let server = start(&[]).await;
    let none = client().get(server.url("/token")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let id = sign_in(&server, CONTACT, json!({})).await;
    let mut forged = id.clone();
    forged.push('A');
    let bad = get_token(&server, &forged).await;
    assert_eq!(bad.status(), 401);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    // An Omnichannel token of this service is not an identity token (wrong issuer/audience).
    let chat_token = get_token(&server, &id).await.text().await.unwrap();
    let replay = get_token(&server, &chat_token).await;
    assert_eq!(replay.status(), 401);
}

#[tokio::test]
async fn the_sign_in_cookie_works_like_a_bearer_token() {
    let server = start(&[]).await;
    let id = sign_in(&server, CONTACT, json!({})).await;
    let r = client()
        .get(server.url("/token"))
        .header("cookie", format!("theme=dark; chat_auth_id={id}"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["token"].as_str().unwrap().starts_with("eyJ"));
}

/// A server allowing https://www.contoso.com (plus `vars`), and a signed-in user's
/// `GET /token` from that origin, whose CORS answer is checked; returns the server, the
/// identity token and the response.
async fn token_from_listed_origin(
    vars: &[(&str, &str)],
) -> (common::Server, String, reqwest::Response) {
    let mut all = vec![("CHAT_AUTH_ALLOWED_ORIGINS", "https://www.contoso.com")];
    all.extend_from_slice(vars);
    let server = start(&all).await;
    let id = sign_in(&server, CONTACT, json!({})).await;
    let ok = client()
        .get(server.url("/token"))
        .bearer_auth(&id)
        .header("origin", "https://www.contoso.com")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://www.contoso.com"
    );
    (server, id, ok)
}

#[tokio::test]
async fn bearer_only_identity_never_allows_credentials() {
    let (_server, _, ok) = token_from_listed_origin(&[("CHAT_AUTH_IDENTITY_MODE", "bearer")]).await;
    assert!(
        ok.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
}

#[tokio::test]
async fn cors_admits_listed_origins_only() {
    let (server, id, ok) = token_from_listed_origin(&[]).await;
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");

    let preflight = client()
        .request(reqwest::Method::OPTIONS, server.url("/token"))
        .header("origin", "https://www.contoso.com")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    // tower-http's CorsLayer answers preflights with 200.
    assert_eq!(preflight.status(), 200);
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );

    let evil = client()
        .get(server.url("/token"))
        .bearer_auth(&id)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let body: Value = evil.json().await.unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");
}

#[tokio::test]
async fn tokens_minted_before_a_rotation_still_validate_after_it() {
    let server = start(&[
        ("CHAT_AUTH_KEY_CACHE_TTL_SECONDS", "0"),
        ("CHAT_AUTH_KEY_MIN_PUBLISHED_SECONDS", "0"),
    ])
    .await;
    let id = sign_in(&server, CONTACT, json!({})).await;
    let get = || async {
        client()
            .get(server.url("/token"))
            .bearer_auth(&id)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let before = get().await;
    let store = FileStore::open(server.data_dir.path()).unwrap();
    let ring = rotate(&store, &common::aws::life(), chat_auth_shared::time::now())
        .await
        .unwrap()
        .ring;
    let after = get().await;
    assert_ne!(before["kid"], after["kid"]);
    assert_eq!(after["kid"], ring.current.kid);
    for token in [&before["token"], &after["token"]] {
        let verdict = validate(&server, token.as_str().unwrap()).await;
        assert_eq!(verdict["active"], true, "{verdict}");
    }
    // The multi-key document publishes the verify-only key, current and next.
    let doc: Value = client()
        .get(server.url("/public-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_upstream_identity_provider_is_trusted_through_its_jwks() {
    // One server plays the site's identity provider (its demo sign-in and JWKS); the other is
    // configured with it as upstream, as a production deployment would be with Entra or Auth0.
    let idp = start(&[]).await;
    let jwks = idp.url("/dev/jwks.json");
    let service = start(&[
        ("CHAT_AUTH_UPSTREAM_ISSUER", "chat-auth-dev"),
        ("CHAT_AUTH_UPSTREAM_JWKS_URL", &jwks),
        ("CHAT_AUTH_UPSTREAM_AUDIENCE", "chat-auth-dev"),
    ])
    .await;
    let id = sign_in(&idp, CONTACT, json!({})).await;
    let r = get_token(&service, &id).await;
    assert_eq!(r.status(), 200);
    let verdict = validate(&service, &r.text().await.unwrap()).await;
    assert_eq!(verdict["sub"], CONTACT);
    // The upstream server has no demo sign-in.
    let dev = client()
        .get(service.url("/dev/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(dev.status(), 404);
    // A token from another issuer's key is refused.
    let other = start(&[]).await;
    let foreign = sign_in(&other, CONTACT, json!({})).await;
    let r = get_token(&service, &foreign).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn an_outside_library_verifies_tokens_with_the_published_documents() {
    let server = start(&[("CHAT_AUTH_ISSUER", "contosohelp.com")]).await;
    let id = sign_in(&server, CONTACT, json!({"region": "EU"})).await;
    let token = get_token(&server, &id).await.text().await.unwrap();
    for query in ["", "?format=pem"] {
        let doc = client()
            .get(server.url(&format!("/public-key{query}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let claims = chat_auth_harness::pyjwt::verify(&token, &doc, "contosohelp.com")
            .unwrap_or_else(|e| panic!("PyJWT refused the token with {query:?}: {e}"));
        assert_eq!(claims["sub"], CONTACT);
        assert_eq!(claims["lwicontexts"], r#"{"region":"EU"}"#);
    }
}

/// GIVEN development mode's demo sign-in, WHEN a page on another site posts to it (a form
/// needs no CORS preflight, and the answer's cookie is kept all the same), THEN it is refused:
/// that is login CSRF, the victim would chat as whoever the other site chose. Sign-out is
/// guarded alike. Same-origin requests (the demo page) and clients that send no browser
/// headers (curl, the tests) keep working.
#[tokio::test]
async fn dev_sign_in_and_sign_out_refuse_cross_site_requests() {
    let server = start(&[]).await;
    let own = format!("http://{}", server.addr);
    let post = |path: &str, headers: &[(&str, &str)]| {
        let mut r = client()
            .post(server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("sub={CONTACT}"));
        for (name, value) in headers {
            r = r.header(*name, *value);
        }
        r.send()
    };
    let cross_site: [&[(&str, &str)]; 6] = [
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[("origin", "http://localhost.evil.example")],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("referer", "https://evil.example/login-csrf.html")],
    ];
    for path in ["/dev/sign-in", "/dev/sign-out"] {
        for headers in cross_site {
            let r = post(path, headers).await.unwrap();
            assert_eq!(r.status(), 403, "{path} {headers:?}");
            assert!(
                r.headers().get("set-cookie").is_none(),
                "{path} {headers:?}"
            );
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                body["error"]["code"], "origin_not_allowed",
                "{path} {headers:?}: {body}"
            );
            assert!(body["error"]["message"].is_string(), "{body}");
        }
    }

    // What Chromium sends for the demo page's own fetch, and what curl sends.
    let referer = format!("{own}/");
    let same_origin = [
        ("origin", own.as_str()),
        ("sec-fetch-site", "same-origin"),
        ("referer", referer.as_str()),
    ];
    for headers in [&same_origin[..], &[]] {
        let r = post("/dev/sign-in", headers).await.unwrap();
        assert_eq!(r.status(), 200, "{headers:?}");
        assert!(r.headers().get("set-cookie").is_some());
        let r = post("/dev/sign-out", headers).await.unwrap();
        assert_eq!(r.status(), 204, "{headers:?}");
    }
}

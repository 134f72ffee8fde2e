//! GIVEN real API Gateway HTTP API (v2) events, WHEN they pass through lambda_http's request
//! conversion and the functions' routers exactly as on Lambda, THEN the answers follow the
//! contract.

use axum::Router;
use chat_auth_shared::provider::ProviderScript;
use chat_auth_shared::store::{MemoryStore, ensure_ring};
use chat_auth_shared::{Config, Section};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

const GET_TOKEN: &str = include_str!("../fixtures/apigw-v2-get-token.json");
const POST_TOKEN: &str = include_str!("../fixtures/apigw-v2-post-token.json");
const ANONYMOUS: &str = include_str!("../fixtures/apigw-v2-get-token-anonymous.json");
const VALIDATE: &str = include_str!("../fixtures/apigw-v2-post-validate.json");
const PUBLIC_KEY: &str = include_str!("../fixtures/apigw-v2-get-public-key.json");
const PROVIDER: &str = include_str!("../fixtures/apigw-v2-get-provider.json");
const ISSUE_IAM: &str = include_str!("../fixtures/apigw-v2-post-issue-iam.json");
/// Client-credentials tokens of the three providers' shapes, as API Gateway's JWT authorizer
/// passes their claims on, and a Cognito user's token for the same app client.
const ISSUE_CLIENTS: [(&str, &str, &str); 3] = [
    (
        "Entra ID",
        "6e3a9a5c-1b1e-4d7e-9c2f-0b8a3f1d2c11",
        include_str!("../fixtures/apigw-v2-post-issue-client-entra.json"),
    ),
    (
        "Auth0",
        "Xy9Qf3kLm2Np8RsT4uVw6Yz0AbCdEfGh",
        include_str!("../fixtures/apigw-v2-post-issue-client-auth0.json"),
    ),
    (
        "Cognito",
        "4p1r8mq2v6n3ltg7c0e5d9hkab",
        include_str!("../fixtures/apigw-v2-post-issue-client-cognito.json"),
    ),
];
const ISSUE_COGNITO_USER: &str =
    include_str!("../fixtures/apigw-v2-post-issue-client-cognito-user.json");

fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars = vec![
        ("CHAT_AUTH_ISSUER", "contosohelp.com"),
        ("CHAT_AUTH_SUBJECT_CLAIM", "contact_id"),
        ("CHAT_AUTH_CONTEXT_CLAIMS", "msdyn_region=region,Tier=tier"),
        ("CHAT_AUTH_CLIENT_CONTEXT_KEYS", "page"),
    ];
    vars.extend_from_slice(extra);
    Config::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

struct Apps {
    mint: Router,
    validate: Router,
    public: Router,
    provider: Router,
    store: Arc<MemoryStore>,
}

async fn apps(config: &Config) -> Apps {
    let store = Arc::new(MemoryStore::new());
    ensure_ring(
        &store,
        &config.ring.lifecycle(),
        chat_auth_shared::time::now(),
    )
    .await
    .unwrap();
    let finish = chat_auth_host::http::finish;
    Apps {
        mint: mint_token::lambda_app(&config.into(), store.clone(), None),
        validate: finish(validate_token::router(Arc::new(
            validate_token::ValidateState::new(&config.tokens, &config.ring.keys, store.clone()),
        ))),
        public: finish(public_keys::router(Arc::new(
            public_keys::PublicKeysState::new(&config.ring.keys, store.clone()),
        ))),
        provider: finish(provider_script::router(Arc::new(ProviderScript::render(
            &config.browser,
        )))),
        store,
    }
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

async fn call(app: &Router, event: &str) -> Answer {
    let request = lambda_http::request::from_str(event).unwrap();
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn authorizer_claims_become_sub_and_context_of_a_raw_jwt() {
    let config = config(&[]);
    let apps = apps(&config).await;
    let answer = call(&apps.mint, GET_TOKEN).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.header("content-type"), "application/jwt");
    assert_eq!(answer.header("cache-control"), "no-store");
    let token = String::from_utf8(answer.body).unwrap();
    let claims = payload(&token);
    assert_eq!(claims["sub"], "87b4d06c-abc2-e811-a9b0-000d3a10e09e");
    assert_eq!(claims["iss"], "contosohelp.com");
    let context: Value = serde_json::from_str(claims["lwicontexts"].as_str().unwrap()).unwrap();
    assert_eq!(
        context,
        serde_json::json!({"msdyn_region": "EU", "Tier": "gold"})
    );
}

#[tokio::test]
async fn post_adds_allow_listed_client_context_and_answers_json() {
    let config = config(&[]);
    let apps = apps(&config).await;
    let answer = call(&apps.mint, POST_TOKEN).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let body = answer.json();
    let ring = apps.store.load_ring_for_tests().await;
    assert_eq!(body["kid"], ring.current.kid);
    assert!(body["expires_at"].as_i64().unwrap() > chat_auth_shared::time::now() + 800);
    let context: Value = serde_json::from_str(
        payload(body["token"].as_str().unwrap())["lwicontexts"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(context["page"], "/checkout");
}

#[tokio::test]
async fn client_keys_outside_the_allow_list_are_a_400_naming_the_key() {
    let config = config(&[]);
    let apps = apps(&config).await;
    let event = POST_TOKEN.replace(r#"{\"page\":\"/checkout\"}"#, r#"{\"Tier\":\"platinum\"}"#);
    let answer = call(&apps.mint, &event).await;
    assert_eq!(answer.status, 400);
    let body = answer.json();
    assert_eq!(body["error"]["code"], "context_key_not_allowed");
    assert!(body["error"]["message"].as_str().unwrap().contains("Tier"));
}

#[tokio::test]
async fn issue_serves_only_the_listed_iam_callers() {
    // The caller is a session of role crm-backend (the fixture's userArn is the STS form).
    for (listed, status) in [
        ("arn:aws:iam::123456789012:role/crm-backend", 200),
        (
            "arn:aws:iam::123456789012:role/integrations/crm-backend",
            200,
        ),
        ("arn:aws:iam::123456789012:role/other-backend", 403),
        ("arn:aws:iam::999999999999:role/crm-backend", 403),
    ] {
        let apps = apps(&config(&[("CHAT_AUTH_ISSUE_CALLERS", listed)])).await;
        let answer = call(&apps.mint, ISSUE_IAM).await;
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, status, "{listed}: {body}");
        if status == 200 {
            let minted: Value = serde_json::from_str(&body).unwrap();
            let claims = payload(minted["token"].as_str().unwrap());
            assert_eq!(claims["sub"], "87b4d06c-abc2-e811-a9b0-000d3a10e09e");
        } else {
            assert!(body.contains("caller_not_allowed"), "{body}");
        }
    }
    // Nobody is listed by default.
    let apps = apps(&config(&[])).await;
    assert_eq!(call(&apps.mint, ISSUE_IAM).await.status, 403);
}

#[tokio::test]
async fn issue_serves_only_listed_client_credentials_callers_and_never_users() {
    let every_client = ISSUE_CLIENTS.map(|(_, id, _)| id).join(",");
    for (provider, id, event) in ISSUE_CLIENTS {
        // Listed: minted for the sub the backend names.
        let served = apps(&config(&[("CHAT_AUTH_ISSUE_CLIENTS", &every_client)])).await;
        let answer = call(&served.mint, event).await;
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, 200, "{provider}: {body}");
        let minted: Value = serde_json::from_str(&body).unwrap();
        let claims = payload(minted["token"].as_str().unwrap());
        assert_eq!(claims["sub"], "87b4d06c-abc2-e811-a9b0-000d3a10e09e");
        // Listed are the other two only, or an IAM caller of the same name: 403.
        let others = ISSUE_CLIENTS
            .iter()
            .filter(|(_, other, _)| *other != id)
            .map(|(_, other, _)| *other)
            .collect::<Vec<_>>()
            .join(",");
        let iam = format!("arn:aws:iam::123456789012:role/{id}");
        for vars in [
            vec![("CHAT_AUTH_ISSUE_CLIENTS", others.as_str())],
            vec![("CHAT_AUTH_ISSUE_CALLERS", iam.as_str())],
            vec![],
        ] {
            let served = apps(&config(&vars)).await;
            let answer = call(&served.mint, event).await;
            assert_eq!(answer.status, 403, "{provider} with {vars:?}");
            let error = &answer.json()["error"];
            assert_eq!(error["code"], "caller_not_allowed");
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .contains("CHAT_AUTH_ISSUE_CLIENTS"),
                "{error}"
            );
        }
    }
    // A user's token for a listed client passes API Gateway's authorizer (Cognito checks
    // client_id against the audience) and is still refused: a user never names the sub.
    let served = apps(&config(&[("CHAT_AUTH_ISSUE_CLIENTS", &every_client)])).await;
    let answer = call(&served.mint, ISSUE_COGNITO_USER).await;
    assert_eq!(answer.status, 403);
    let error = &answer.json()["error"];
    assert_eq!(error["code"], "caller_not_allowed");
    assert!(
        error["message"].as_str().unwrap().contains("user"),
        "{error}"
    );
}

#[tokio::test]
async fn no_authorizer_claims_is_401() {
    let config = config(&[]);
    let apps = apps(&config).await;
    let answer = call(&apps.mint, ANONYMOUS).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn a_minted_token_validates_and_a_tampered_one_lists_its_problems() {
    let config = config(&[]);
    let apps = apps(&config).await;
    let token = String::from_utf8(call(&apps.mint, GET_TOKEN).await.body).unwrap();
    let answer = call(&apps.validate, &VALIDATE.replace("__TOKEN__", &token)).await;
    assert_eq!(answer.status, 200);
    let verdict = answer.json();
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["context"]["Tier"], "gold");

    let mut forged = token.clone();
    forged.insert(forged.rfind('.').unwrap() - 2, 'A');
    let verdict = call(&apps.validate, &VALIDATE.replace("__TOKEN__", &forged))
        .await
        .json();
    assert_eq!(verdict["active"], false);
    assert!(!verdict["problems"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_public_key_url_serves_the_current_pem_with_a_short_cache() {
    let config = config(&[]);
    let apps = apps(&config).await;
    let answer = call(&apps.public, PUBLIC_KEY).await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("cache-control").contains("max-age=300"));
    let pem = String::from_utf8(answer.body).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let keys = chat_auth_shared::publish::parse_public_key_document(pem.as_bytes()).unwrap();
    let ring = apps.store.load_ring_for_tests().await;
    assert_eq!(keys.single().unwrap().kid, ring.current.kid);
}

#[tokio::test]
async fn the_provider_script_names_the_configured_client_function() {
    let config = config(&[("CHAT_AUTH_CLIENT_FUNCTION", "contoso.chat.getToken")]);
    let apps = apps(&config).await;
    let answer = call(&apps.provider, PROVIDER).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        "application/javascript; charset=utf-8"
    );
    assert!(!answer.header("etag").is_empty());
    assert!(
        String::from_utf8(answer.body)
            .unwrap()
            .contains("contoso.chat.getToken")
    );
}

trait LoadForTests {
    async fn load_ring_for_tests(&self) -> chat_auth_shared::RingState;
}

impl LoadForTests for Arc<MemoryStore> {
    async fn load_ring_for_tests(&self) -> chat_auth_shared::RingState {
        use chat_auth_shared::store::RingSource;
        self.load_ring().await.unwrap().unwrap()
    }
}

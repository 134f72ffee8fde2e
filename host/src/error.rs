//! Every refusal a host answers with, and the one place where a cause becomes an HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why a request was refused: a domain cause ([`chat_auth_shared::Error`]) or one that only exists
/// because the request came over HTTP. One variant per cause; [`Error::status`] and
/// [`Error::code`] map them to what clients see.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A domain cause: the context, the keys, the store.
    #[error(transparent)]
    Domain(#[from] chat_auth_shared::Error),
    /// A body with a `Content-Type` the route does not read.
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    /// The JSON body does not parse or does not have the route's shape.
    #[error("the JSON body is invalid: {0}")]
    MalformedJson(#[source] serde_json::Error),
    /// The form body does not parse or does not have the route's shape.
    #[error("the form body is invalid: {0}")]
    MalformedForm(#[source] serde_urlencoded::de::Error),
    /// The body could not be read (the connection broke, a bad chunk).
    #[error("the request body could not be read")]
    UnreadableBody,
    /// The query string does not parse.
    #[error("the query string is malformed")]
    MalformedQuery,
    /// A query parameter names a value the route does not offer.
    #[error("{name} must be {allowed}")]
    UnknownParameterValue {
        /// The parameter.
        name: &'static str,
        /// What it may be.
        allowed: &'static str,
    },
    /// The request body is larger than the route accepts.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The caller has no verified identity, not the kind the route needs, or one that does
    /// not verify.
    #[error("{0}")]
    Unauthenticated(Refusal),
    /// The upstream identity provider's keys cannot be fetched and no usable cached copy is
    /// left; identity tokens cannot be verified, so the server fails closed.
    #[error("identity provider keys unavailable: {0}")]
    UpstreamUnavailable(String),
    /// The caller's browser origin is not on the allow-list.
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// An IAM-authenticated backend that is not on the `/issue` allow-list.
    #[error("this IAM identity may not use /issue (it is not in CHAT_AUTH_ISSUE_CALLERS)")]
    CallerNotAllowed,
    /// A verified client-credentials token that may not use `/issue`: a client not on the
    /// allow-list, a user's token, or one that names no client.
    #[error("{0}")]
    ClientNotAllowed(chat_auth_shared::mapping::ClientRefusal),
    /// Development mode, and `/issue` without the right per-run issue key.
    #[error("wrong X-Chat-Auth-Issue-Key: use the one `chat-auth serve --dev` printed at start")]
    IssueKeyRefused,
    /// Development mode answers only requests addressed to a loopback host: a foreign `Host`
    /// is a DNS-rebinding page or a proxy exposing the demo sign-in.
    #[error(
        "development mode answers only requests for localhost or a loopback address (Host header)"
    )]
    HostNotAllowed,
    /// The request's headers are larger, or more numerous, than the server accepts.
    #[error("request headers exceed {bytes} bytes or {fields} fields")]
    HeadersTooLarge {
        /// The limit in bytes (names and values).
        bytes: usize,
        /// The limit in header fields.
        fields: usize,
    },
    /// The request took longer than the server allows.
    #[error("the request took longer than {seconds} s")]
    RequestTimeout {
        /// The limit in seconds.
        seconds: u64,
    },
    /// The server is at its concurrency limit; the client should retry.
    #[error("the server is busy; retry shortly")]
    Overloaded,
    /// No route matches the path.
    #[error("no such route")]
    NotFound,
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A handler panicked; the panic guard answers instead of dropping the connection.
    #[error("a handler panicked")]
    Panicked,
}

/// Why a caller was refused with 401 `unauthenticated`. The error code is the same for all of
/// them (a client cannot do more than sign in again); the message says which it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No identity came with the request: no bearer token, nor the development cookie.
    NoIdentity,
    /// `/issue` was called by a signed-in customer or an anonymous caller, not a trusted
    /// backend.
    NotABackend,
    /// The identity token came but did not verify.
    IdentityToken(TokenRefusal),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoIdentity => {
                f.write_str("sign in first: no verified identity came with the request")
            }
            Refusal::NotABackend => f.write_str(
                "/issue accepts only trusted backends (on AWS: IAM-signed requests from \
                 CHAT_AUTH_ISSUE_CALLERS, or client-credentials tokens of \
                 CHAT_AUTH_ISSUE_CLIENTS on /issue/client-credentials; locally: those tokens, \
                 or the X-Chat-Auth-Issue-Key header in development mode)",
            ),
            Refusal::IdentityToken(why) => {
                write!(f, "the identity token was refused: {}", why.as_str())
            }
        }
    }
}

/// Why the identity provider's token did not verify, as a short code in the 401 message: enough
/// for the page's developer to tell a stale sign-in from a misconfigured provider, without
/// echoing the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Not a JWS this server can read, or an algorithm it does not know.
    Malformed,
    /// No key of the provider's set has the token's `kid` (a fetched set is fetched again
    /// first, in case the provider rotated).
    UnknownKid,
    /// The header's `alg` is not the algorithm of the key it names.
    AlgMismatch,
    /// `exp` has passed (beyond the leeway): the customer must sign in again.
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    NotYetValid,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` is not the configured audience.
    WrongAudience,
    /// The signature does not verify with the named key.
    BadSignature,
    /// `exp`, `iss` or `aud` is missing.
    MissingClaim,
}

impl TokenRefusal {
    /// The code in the message.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRefusal::Malformed => "malformed",
            TokenRefusal::UnknownKid => "unknown_kid",
            TokenRefusal::AlgMismatch => "alg_mismatch",
            TokenRefusal::Expired => "expired",
            TokenRefusal::NotYetValid => "not_yet_valid",
            TokenRefusal::WrongIssuer => "wrong_issuer",
            TokenRefusal::WrongAudience => "wrong_audience",
            TokenRefusal::BadSignature => "bad_signature",
            TokenRefusal::MissingClaim => "missing_claim",
        }
    }
}

impl From<TokenRefusal> for Error {
    fn from(why: TokenRefusal) -> Self {
        Error::Unauthenticated(Refusal::IdentityToken(why))
    }
}

impl Error {
    /// The stable, machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Domain(e) => e.code(),
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::MalformedJson(_) => "malformed_json",
            Error::MalformedForm(_) => "malformed_form",
            Error::UnreadableBody => "unreadable_body",
            Error::MalformedQuery => "bad_query",
            Error::UnknownParameterValue { .. } => "bad_format",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::UpstreamUnavailable(_) => "identity_provider_unavailable",
            Error::OriginNotAllowed => "origin_not_allowed",
            Error::CallerNotAllowed | Error::ClientNotAllowed(_) | Error::IssueKeyRefused => {
                "caller_not_allowed"
            }
            Error::HostNotAllowed => "host_not_allowed",
            Error::HeadersTooLarge { .. } => "headers_too_large",
            Error::RequestTimeout { .. } => "request_timeout",
            Error::Overloaded => "overloaded",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::Panicked => "internal_error",
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Domain(e) => domain_status(e),
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::MalformedJson(_)
            | Error::MalformedForm(_)
            | Error::UnreadableBody
            | Error::MalformedQuery
            | Error::UnknownParameterValue { .. } => StatusCode::BAD_REQUEST,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::OriginNotAllowed
            | Error::CallerNotAllowed
            | Error::ClientNotAllowed(_)
            | Error::IssueKeyRefused
            | Error::HostNotAllowed => StatusCode::FORBIDDEN,
            Error::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Error::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Overloaded | Error::UpstreamUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Panicked => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to clients: server-side causes are summarised, never detailed, so
    /// that paths, upstream errors and key material stay in the (redacted) logs.
    pub fn public_message(&self) -> String {
        match self {
            Error::UpstreamUnavailable(_) => {
                "the identity provider's keys are temporarily unavailable".to_owned()
            }
            Error::Domain(chat_auth_shared::Error::KeyService {
                throttled: true, ..
            }) => "the signing service is busy; retry shortly".to_owned(),
            Error::Domain(e) if e.is_key_store() => {
                "the signing keys are temporarily unavailable".to_owned()
            }
            _ if self.status().is_server_error() && !matches!(self, Error::Overloaded) => {
                "internal error".to_owned()
            }
            _ => self.to_string(),
        }
    }
}

fn domain_status(e: &chat_auth_shared::Error) -> StatusCode {
    use chat_auth_shared::Error as D;
    match e {
        D::Invalid(_) | D::ContextKeyNotAllowed(_) | D::ReservedClaim(_) | D::Rotation(_) => {
            StatusCode::BAD_REQUEST
        }
        D::NoSubjectClaim { .. } => StatusCode::UNAUTHORIZED,
        D::Conflict(_) => StatusCode::CONFLICT,
        _ if e.is_key_store() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<chat_auth_shared::Problem> for Error {
    fn from(problem: chat_auth_shared::Problem) -> Self {
        Error::Domain(problem.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %chat_auth_shared::chain(&self), "request failed");
        } else {
            tracing::debug!(code = self.code(), "request refused");
        }
        let mut response = (
            status,
            axum::Json(json!({"error": {"code": self.code(), "message": self.public_message()}})),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_auth_shared::mapping::ClientRefusal;

    #[test]
    fn server_side_causes_never_reach_the_client() {
        let store = Error::Domain(chat_auth_shared::Error::StoreUnavailable(
            "secret arn:aws:secretsmanager:eu-west-1:1:secret:x".into(),
        ));
        assert_eq!(store.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!store.public_message().contains("arn:"));
        let io = Error::Domain(chat_auth_shared::Error::Io {
            path: "/home/me/.chat-auth/ring.json".into(),
            source: std::io::Error::other("denied"),
        });
        assert_eq!(
            (io.status(), io.public_message().as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        );
        assert_eq!(
            Error::Overloaded.public_message(),
            Error::Overloaded.to_string()
        );
    }

    #[test]
    fn the_media_type_is_a_cause_of_its_own() {
        assert_eq!(
            Error::UnsupportedMediaType.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let json = serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err();
        assert_eq!(Error::MalformedJson(json).status(), StatusCode::BAD_REQUEST);
    }

    /// The 401 messages are what a page's developer reads; nothing else pins them.
    #[test]
    fn a_refusal_reads_as_it_always_has() {
        let message = |why: Refusal| Error::Unauthenticated(why).public_message();
        assert_eq!(
            message(Refusal::NoIdentity),
            "sign in first: no verified identity came with the request"
        );
        assert_eq!(
            message(Refusal::NotABackend),
            "/issue accepts only trusted backends (on AWS: IAM-signed requests from \
             CHAT_AUTH_ISSUE_CALLERS, or client-credentials tokens of \
             CHAT_AUTH_ISSUE_CLIENTS on /issue/client-credentials; locally: those tokens, \
             or the X-Chat-Auth-Issue-Key header in development mode)"
        );
        assert_eq!(
            message(Refusal::IdentityToken(TokenRefusal::WrongAudience)),
            "the identity token was refused: wrong_audience"
        );
        let e = Error::from(TokenRefusal::Expired);
        assert_eq!(
            (e.code(), e.status()),
            ("unauthenticated", StatusCode::UNAUTHORIZED)
        );
    }

    /// docs/reference.md and openapi.json list the error codes; these fail when a list drifts
    /// from `Error::code` and `Error::status`.
    mod documented {
        use super::*;
        use chat_auth_shared::documents::{drift, table_rows};
        use chat_auth_shared::{Problem, ProblemCode};
        use serde_json::Value;
        use std::collections::BTreeSet;

        const REFERENCE: &str =
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/reference.md"));
        const OPENAPI: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json"));

        /// Codes only operator commands answer with: no route does, so openapi.json has none.
        const NOT_ON_ANY_ROUTE: [&str; 2] = ["conflict", "rotation_refused"];

        /// One error of every variant but `Domain(Invalid)`, whose codes are the problem codes
        /// (checked against their own table in the domain crate).
        fn one_of_each() -> Vec<Error> {
            use chat_auth_shared::Error as D;
            let json = serde_json::from_str::<Value>("{").unwrap_err();
            let form = serde_urlencoded::from_str::<Vec<(String, u8)>>("a=x").unwrap_err();
            let all = vec![
                Error::Domain(D::Config {
                    var: "X",
                    reason: String::new(),
                }),
                Error::Domain(D::ContextKeyNotAllowed(String::new())),
                Error::Domain(D::ReservedClaim(String::new())),
                Error::Domain(D::NoSubjectClaim {
                    claim: String::new(),
                }),
                Error::Domain(D::StoreUnavailable("x".into())),
                Error::Domain(D::NotProvisioned("key ring")),
                Error::Domain(D::CorruptKeys {
                    what: "ring",
                    reason: String::new(),
                }),
                Error::Domain(D::UnreadableKeys {
                    what: "ring",
                    source: serde_json::from_str::<Value>("{").unwrap_err(),
                }),
                Error::Domain(D::Conflict(String::new())),
                Error::Domain(D::Rotation(String::new())),
                Error::Domain(D::Crypto("x")),
                Error::Domain(D::KeyService {
                    throttled: true,
                    source: "x".into(),
                }),
                Error::Domain(D::KeyService {
                    throttled: false,
                    source: "x".into(),
                }),
                Error::Domain(D::Io {
                    path: String::new(),
                    source: std::io::Error::other("x"),
                }),
                Error::UnsupportedMediaType,
                Error::MalformedJson(json),
                Error::MalformedForm(form),
                Error::UnreadableBody,
                Error::MalformedQuery,
                Error::UnknownParameterValue {
                    name: "format",
                    allowed: "pem",
                },
                Error::PayloadTooLarge { limit: 1 },
                Error::Unauthenticated(Refusal::NoIdentity),
                Error::UpstreamUnavailable(String::new()),
                Error::OriginNotAllowed,
                Error::CallerNotAllowed,
                Error::ClientNotAllowed(ClientRefusal::Unlisted),
                Error::IssueKeyRefused,
                Error::HostNotAllowed,
                Error::HeadersTooLarge {
                    bytes: 1,
                    fields: 1,
                },
                Error::RequestTimeout { seconds: 1 },
                Error::Overloaded,
                Error::NotFound,
                Error::MethodNotAllowed,
                Error::Panicked,
            ];
            for e in &all {
                // No wildcard: a new variant does not compile until it is listed above. (The
                // domain enum is non-exhaustive here, so its new variants are not caught.)
                match e {
                    Error::Domain(_)
                    | Error::UnsupportedMediaType
                    | Error::MalformedJson(_)
                    | Error::MalformedForm(_)
                    | Error::UnreadableBody
                    | Error::MalformedQuery
                    | Error::UnknownParameterValue { .. }
                    | Error::PayloadTooLarge { .. }
                    | Error::Unauthenticated(_)
                    | Error::UpstreamUnavailable(_)
                    | Error::OriginNotAllowed
                    | Error::CallerNotAllowed
                    | Error::ClientNotAllowed(_)
                    | Error::IssueKeyRefused
                    | Error::HostNotAllowed
                    | Error::HeadersTooLarge { .. }
                    | Error::RequestTimeout { .. }
                    | Error::Overloaded
                    | Error::NotFound
                    | Error::MethodNotAllowed
                    | Error::Panicked => {}
                }
            }
            all
        }

        fn answered() -> BTreeSet<(String, u16)> {
            one_of_each()
                .iter()
                .map(|e| (e.code().to_owned(), e.status().as_u16()))
                .collect()
        }

        #[test]
        fn the_reference_lists_every_error_code_with_its_status() {
            let listed: BTreeSet<(String, u16)> = table_rows(REFERENCE, "## Error codes")
                .into_iter()
                .map(|row| (row[0].to_owned(), row[1].parse().unwrap()))
                .collect();
            let drifted = drift("docs/reference.md, error codes", &listed, &answered());
            assert!(drifted.is_none(), "{}", drifted.unwrap_or_default());
        }

        #[test]
        fn a_problem_answers_400_with_its_own_code() {
            for &code in ProblemCode::ALL {
                let e = Error::from(Problem::new(code, "m"));
                assert_eq!(
                    (e.code(), e.status()),
                    (code.as_str(), StatusCode::BAD_REQUEST)
                );
            }
        }

        /// `(code, status)` for every error code an operation's response enumerates.
        fn enumerated(doc: &Value) -> BTreeSet<(String, u16)> {
            let mut found = BTreeSet::new();
            for operation in doc["paths"].as_object().unwrap().values() {
                for op in operation.as_object().unwrap().values() {
                    let Some(responses) = op["responses"].as_object() else {
                        continue;
                    };
                    for (status, response) in responses {
                        let response = match response["$ref"].as_str() {
                            Some(r) => {
                                &doc["components"]["responses"]
                                    [r.trim_start_matches("#/components/responses/")]
                            }
                            None => response,
                        };
                        let schema = &response["content"]["application/json"]["schema"];
                        for part in schema["allOf"].as_array().into_iter().flatten() {
                            let codes = &part["properties"]["error"]["properties"]["code"]["enum"];
                            for code in codes.as_array().into_iter().flatten() {
                                let code = code.as_str().unwrap().to_owned();
                                found.insert((code, status.parse().unwrap()));
                            }
                        }
                    }
                }
            }
            found
        }

        #[test]
        fn openapi_names_every_error_code_a_route_answers_under_its_status() {
            let doc: Value = serde_json::from_str(OPENAPI).unwrap();
            let answered = answered();
            let enumerated = enumerated(&doc);
            let misplaced: BTreeSet<_> = enumerated.difference(&answered).collect();
            assert!(
                misplaced.is_empty(),
                "openapi.json enumerates codes under a status they are not answered with: {misplaced:?}"
            );
            // Codes outside the enums (400s, 404, 405) are named in the descriptions.
            let unnamed: Vec<&str> = answered
                .iter()
                .map(|(code, _)| code.as_str())
                .filter(|code| !NOT_ON_ANY_ROUTE.contains(code))
                .filter(|code| {
                    !OPENAPI.contains(&format!("`{code}`"))
                        && !enumerated.iter().any(|(c, _)| c == code)
                })
                .collect();
            assert!(unnamed.is_empty(), "openapi.json never names {unnamed:?}");
        }
    }
}

//! API Gateway HTTP API (payload 2.0) events from tests/fixtures, and the body of a function's
//! answer as a client of API Gateway sees it.

use base64::Engine;
use serde_json::{Value, json};
use std::path::PathBuf;

/// tests/fixtures/`name`.
pub fn fixture_path(name: &str) -> PathBuf {
    crate::root().join("tests/fixtures").join(name)
}

/// The event in tests/fixtures/`name`.
pub fn fixture(name: &str) -> Value {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture's `GET /public-key` sent to `path` without a query: `/public-key` is the
/// multi-key array, `/.well-known/jwks.json` the JWKS.
pub fn get_public_keys(path: &str) -> Value {
    let mut event = fixture("apigw-v2-get-public-key.json");
    event["rawPath"] = json!(path);
    event["routeKey"] = json!(format!("GET {path}"));
    event["requestContext"]["http"]["path"] = json!(path);
    event["requestContext"]["routeKey"] = json!(format!("GET {path}"));
    event["rawQueryString"] = json!("");
    if let Some(event) = event.as_object_mut() {
        event.remove("queryStringParameters");
    }
    event
}

/// The body of an API Gateway answer as its client reads it: API Gateway decodes a base64 body
/// first (lambda_http encodes media types it deems binary, `application/jwt` among them).
pub fn response_body(response: &Value) -> Result<String, String> {
    let body = response["body"]
        .as_str()
        .ok_or_else(|| format!("no body in {response}"))?;
    if response["isBase64Encoded"] == true {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("body is not base64: {e}"))?;
        String::from_utf8(bytes).map_err(|e| format!("body is not UTF-8: {e}"))
    } else {
        Ok(body.to_owned())
    }
}

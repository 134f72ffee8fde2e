//! Bounded HTTP fetches of small documents: the upstream JWKS, the served provider script and
//! what `chat-auth doctor` reads from a deployment.

/// The body of a successful `response`, refused past `max` bytes (see [`read_capped`]).
pub async fn capped_body(response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    read_capped(response, max).await
}

/// The body of `response` whatever its status (an error answer says why in its body), refused
/// past `max` bytes whether announced (`Content-Length`) or streamed: a misbehaving server must
/// not make us buffer without bound.
pub async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("larger than {max} bytes");
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

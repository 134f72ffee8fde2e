//! The Node.js peer the issue sets the local server against: xtask/peer/jose-server.mjs, Node's
//! `http` and the jose package answering `GET /token` with the token the server mints (same
//! header fields and claims, a 2048-bit key). It signs once per request and verifies no caller;
//! the server also verifies the caller's identity token (mostly remembered). It runs on the
//! server core and is loaded and measured like the server, so that the goal is a ratio of two
//! figures taken on the same core moments apart.

use super::{WARM_UP, load_figure};
use crate::client::{Client, Request};
use crate::error::{Error, Result};
use crate::figures::{Figure, Id};
use crate::floor::Floors;
use crate::load::closed_loop;
use crate::settings::{Settings, Workspace};
use crate::sys;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::process::Command;

/// Where scripts/bench.sh installs jose, under `target/` (npm ci from xtask/peer's lockfile).
const INSTALL: &str = "peer";
/// The oldest Node the peer runs on: jose 6 needs the WebCrypto global, unflagged from Node 19,
/// and 20 is the oldest maintained line with it (Debian 12's own nodejs is 18).
const NODE_MAJOR: u32 = 20;
/// Connections, as in the server's load it is set beside ([`super::PEER_AFTER`]).
const CONNECTIONS: usize = 16;

/// Starts the peer, checks that its token is shaped as `ours` (the server's), and measures it;
/// `None`, with a note, when node (20 or later) or jose is not installed (scripts/bench.sh
/// installs both): the goal is then not measured, and the rest of the run stands.
pub fn run(
    settings: &Settings,
    workspace: &Workspace,
    client: &Client,
    floors: &mut Floors,
    ours: &str,
) -> Result<Option<Figure>> {
    let node = match node_version()? {
        None => {
            crate::note(
                "peer: node is not on PATH (scripts/bench.sh installs it); the peer is not \
                 measured",
            );
            return Ok(None);
        }
        Some((version, major)) if major < NODE_MAJOR => {
            crate::note(format!(
                "peer: node {version} is older than jose 6 needs (v{NODE_MAJOR}); the peer is \
                 not measured"
            ));
            return Ok(None);
        }
        Some((version, _)) => version,
    };
    let jose_manifest = format!("{INSTALL}/node_modules/jose/package.json");
    let Some(manifest) = workspace.tool(&jose_manifest) else {
        crate::note(format!(
            "peer: target/{jose_manifest} is missing (scripts/bench.sh installs it); the peer \
             is not measured"
        ));
        return Ok(None);
    };
    let text = std::fs::read_to_string(&manifest).map_err(|e| Error::file(&manifest, e))?;
    let jose = serde_json::from_str::<Value>(&text)?["version"]
        .as_str()
        .unwrap_or("?")
        .to_owned();

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], chat_auth_harness::free_port()));
    crate::note(format!(
        "peer: Node {node} + jose {jose} on core {}",
        settings.cores.server
    ));
    let mut peer = settings.cores.start_on_server(
        "the Node.js peer (xtask/peer/jose-server.mjs)",
        Command::new("node")
            .arg(workspace.root.join("xtask/peer/jose-server.mjs"))
            .env("PEER_PORT", addr.port().to_string())
            .env("PEER_MODULES", workspace.root.join("target").join(INSTALL)),
        &workspace.log("peer"),
    )?;
    client.block_on(peer.wait_http(&format!("http://{addr}/token")));
    // The peer's failures name it and its log: its route is the server's.
    let named = |e: Error| {
        Error::Answer(format!(
            "the Node.js peer: {e}; see {}",
            workspace.log("peer").display()
        ))
    };
    let request = Request::get("/token");
    let theirs = client
        .send(addr, &request)
        .and_then(|r| r.success(&request))
        .map_err(named)?
        .text();
    if shape(&theirs)? != shape(ours)? {
        return Err(Error::Answer(format!(
            "the Node.js peer's token is not shaped as the server's (header fields, claims): \
             {theirs} against {ours}"
        )));
    }

    let load = |duration| client.block_on(closed_loop(addr, &request, CONNECTIONS, duration));
    load(WARM_UP).map_err(named)?;
    let floor = floors.take()?;
    let before = sys::process_cpu(peer.pid())?;
    let load = load(settings.seconds).map_err(named)?;
    let cpu = sys::process_cpu(peer.pid())? - before;
    let mut figure = load_figure(Id::TokenNodeJose, &load, cpu, floor)?;
    figure
        .detail
        .push_str(&format!("; Node {node}, jose {jose}"));
    Ok(Some(figure))
}

/// `node --version` (`v20.20.2`) and its major version, or `None` when there is no node to run.
fn node_version() -> Result<Option<(String, u32)>> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let major = version
                .strip_prefix('v')
                .and_then(|v| v.split('.').next()?.parse().ok())
                .ok_or_else(|| Error::Answer(format!("node --version: {version:?}")))?;
            Ok(Some((version, major)))
        }
        Ok(out) => Err(Error::Answer(format!("node --version: {}", out.status))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("node --version", e)),
    }
}

/// What must agree between the two tokens, so that the peer does the same work: the header and
/// the claims, with what differs by key and by call reduced to its form (the kid present, the
/// jti's length, the times relative to `iat`).
fn shape(token: &str) -> Result<Value> {
    let bad = || Error::Answer(format!("not a JWT with object header and claims: {token}"));
    let part = |b64: Option<&str>| -> Result<Value> {
        let bytes = URL_SAFE_NO_PAD
            .decode(b64.ok_or_else(bad)?)
            .map_err(|_| bad())?;
        Some(serde_json::from_slice::<Value>(&bytes)?)
            .filter(Value::is_object)
            .ok_or_else(bad)
    };
    let mut parts = token.split('.');
    let (mut header, mut claims) = (part(parts.next())?, part(parts.next())?);
    header["kid"] = json!(header["kid"].is_string());
    claims["jti"] = json!(claims["jti"].as_str().map(str::len));
    let iat = claims["iat"].as_i64().ok_or_else(bad)?;
    for time in ["iat", "nbf", "exp"] {
        claims[time] = json!(claims[time].as_i64().map(|t| t - iat));
    }
    Ok(json!({ "header": header, "claims": claims }))
}

#[cfg(test)]
mod tests {
    use super::shape;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    fn token(header: serde_json::Value, claims: serde_json::Value) -> String {
        let b64 = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", b64(header), b64(claims))
    }

    #[test]
    fn tokens_agree_but_for_key_times_and_jti() {
        let header = |kid| json!({"typ": "JWT", "alg": "RS256", "kid": kid});
        let claims = |iat: i64, jti| {
            json!({"sub": "s", "iss": "chat-auth", "iat": iat, "nbf": iat, "exp": iat + 930,
                   "jti": jti, "lwicontexts": "{\"region\":\"emea\"}"})
        };
        let ours = token(header("a"), claims(100, "0123456789012345678901"));
        let theirs = token(header("b"), claims(200, "abcdefghijklmnopqrstuv"));
        assert_eq!(shape(&ours).unwrap(), shape(&theirs).unwrap());
        let mut short = claims(100, "0123456789012345678901");
        short["exp"] = json!(160);
        assert_ne!(
            shape(&ours).unwrap(),
            shape(&token(header("a"), short)).unwrap()
        );
        let mut bare = claims(100, "0123456789012345678901");
        bare.as_object_mut().unwrap().remove("lwicontexts");
        assert_ne!(
            shape(&ours).unwrap(),
            shape(&token(header("a"), bare)).unwrap()
        );
        assert!(shape("not.a-token").is_err());
    }
}

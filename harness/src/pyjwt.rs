//! An outside verifier for tokens: PyJWT (tests/py/verify_token.py), given only a token and one
//! published document, as Omnichannel is given only the Public key URL.

use serde_json::Value;

/// PyJWT's verdict on `token` with `document` (the multi-key array, a PEM block or a JWKS):
/// the verified claims, or PyJWT's error output.
pub fn verify(token: &str, document: &[u8], issuer: &str) -> Result<Value, String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (token_file, document_file) = (dir.path().join("token"), dir.path().join("document"));
    std::fs::write(&token_file, token).expect("write the token");
    std::fs::write(&document_file, document).expect("write the document");
    let out = std::process::Command::new(crate::python())
        .arg(crate::root().join("tests/py/verify_token.py"))
        .arg(&token_file)
        .arg(&document_file)
        .arg(issuer)
        .output()
        .expect("the test command installs a Python with PyJWT under target/py");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("verify_token.py prints the claims"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

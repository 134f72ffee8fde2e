//! The bench's do-nothing function: a minimal lambda_http router answering 204, run under the
//! same cargo-lambda runtime as the real functions. Its CPU per warm invocation is what the
//! runtime client, lambda_http's event conversion and axum's dispatch cost on every invocation,
//! which the functions' own work is measured beyond.

// The same runtime as the functions (functions/*/src/main.rs), so that the two differ only in
// what the handler does.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let app = axum::Router::new().fallback(async || axum::http::StatusCode::NO_CONTENT);
    lambda_http::run(app).await
}

//! The page's `<script>` tag for the provider script, with the integrity of the script as it is
//! served: `chat-auth snippet` prints it, and `chat-auth doctor` prints it once the script
//! passes, so that both hand the page the same tag.

/// Scripts larger than this are not the provider script (it is about 12 KB).
const MAX_SCRIPT_BYTES: usize = 1024 * 1024;

/// The provider script as served.
pub struct ServedScript {
    /// The bytes a browser checks the `integrity` attribute against.
    pub body: Vec<u8>,
    /// `Content-Type` as served: a browser runs a script only when it is served as one.
    pub content_type: Option<String>,
    /// `sha384-...` of [`ServedScript::body`].
    pub integrity: String,
}

/// Fetches the script at `url` (a non-2xx answer is an error naming its status).
pub async fn served_script(client: &reqwest::Client, url: &str) -> Result<ServedScript, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| chat_auth_shared::chain(&e.without_url()))?;
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = crate::fetch::capped_body(response, MAX_SCRIPT_BYTES).await?;
    Ok(ServedScript {
        integrity: chat_auth_shared::provider::integrity(&body),
        content_type,
        body,
    })
}

/// The tag to paste into the page, before the widget's script. `crossorigin`: the script comes
/// from the service's origin, and a browser refuses a cross-origin script with `integrity`
/// unless it was fetched in CORS mode.
pub fn script_tag(url: &str, integrity: &str) -> String {
    format!("<script src=\"{url}\" integrity=\"{integrity}\" crossorigin=\"anonymous\"></script>")
}

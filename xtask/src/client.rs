//! A minimal HTTP/1.1 client on a current-thread tokio runtime: set-up requests, the load
//! generator's keep-alive connections, Lambda invocations and Secrets Manager calls. The
//! runtime runs on the calling thread, so everything it does stays on the load core.

use crate::error::{Error, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// No single request of the run may take longer (a load's requests take milliseconds).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One request, reusable: the load generator sends the same one over and over.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Request {
    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Request {
            method: Method::GET,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `POST path` with a JSON body.
    pub fn post_json(path: &str, body: &serde_json::Value) -> Self {
        Request {
            method: Method::POST,
            body: Bytes::from(body.to_string()),
            ..Request::get(path)
        }
        .header(CONTENT_TYPE, "application/json")
    }

    /// The same request with header `name` set to `value` (replacing any earlier value).
    /// Values are the run's own (tokens, media types), always visible ASCII.
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        let value = HeaderValue::from_str(value).expect("header values of the run are ASCII");
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    /// What the request is, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn build(&self, addr: SocketAddr) -> hyper::Request<Full<Bytes>> {
        let mut request = hyper::Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.path.parse().expect("paths of the run are valid URIs");
        let headers = request.headers_mut();
        // hyper's connection API sends only what it is given; servers check the Host.
        let host = HeaderValue::from_str(&addr.to_string()).expect("an address is ASCII");
        headers.insert(HOST, host);
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
        request
    }
}

/// A response, read to its end.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Response {
    /// The body as text (lossy: for tokens, which are ASCII, and messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// `self` if the status is 2xx, else an error naming the request.
    pub fn success(self, request: &Request) -> Result<Self> {
        if self.status.is_success() {
            return Ok(self);
        }
        let mut text = self.text();
        text.truncate(300);
        Err(Error::Answer(format!(
            "{} answered {}: {text}",
            request.describe(),
            self.status
        )))
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Connection {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| Error::io(format!("connecting to {addr}"), e))?;
        Connection::over(stream, addr).await
    }

    /// HTTP/1.1 over an already connected stream (the cold start connects by itself).
    pub async fn over(stream: TcpStream, addr: SocketAddr) -> Result<Self> {
        stream
            .set_nodelay(true)
            .map_err(|e| Error::io(format!("TCP_NODELAY to {addr}"), e))?;
        let (sender, connection) =
            http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|source| Error::Http {
                    what: format!("handshake with {addr}"),
                    source,
                })?;
        // The connection's I/O runs as its own task; it ends when `sender` is dropped.
        tokio::spawn(connection);
        Ok(Connection { addr, sender })
    }

    /// Sends `request` and reads the whole response.
    pub async fn send(&mut self, request: &Request) -> Result<Response> {
        let what = || format!("{} to {}", request.describe(), self.addr);
        let exchange = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request.build(self.addr)).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Response { status, body })
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(source)) => Err(Error::Http {
                what: what(),
                source,
            }),
            Err(_) => Err(Error::Answer(format!(
                "{} did not answer within {REQUEST_TIMEOUT:?}",
                what()
            ))),
        }
    }
}

/// The run's async runtime, driven from synchronous code with [`Client::block_on`].
pub struct Client {
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A current-thread runtime with I/O and timers.
    pub fn new() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the tokio runtime", e))?;
        Ok(Client { runtime })
    }

    /// Runs `future` to its end on this thread.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Sends `request` to `addr` on a new connection.
    pub fn send(&self, addr: SocketAddr, request: &Request) -> Result<Response> {
        self.block_on(async { Connection::open(addr).await?.send(request).await })
    }

    /// Sends `request` over `stream`, a connection made without the runtime.
    pub fn send_over(&self, stream: std::net::TcpStream, request: &Request) -> Result<Response> {
        let addr = stream
            .peer_addr()
            .map_err(|e| Error::io("peer address", e))?;
        self.block_on(async {
            stream
                .set_nonblocking(true)
                .map_err(|e| Error::io("non-blocking socket", e))?;
            let stream = TcpStream::from_std(stream).map_err(|e| Error::io("tokio socket", e))?;
            Connection::over(stream, addr).await?.send(request).await
        })
    }
}

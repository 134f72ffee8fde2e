//! The load generator: a closed loop, as wrk runs it. Each of N keep-alive connections sends
//! the next request as soon as the previous answer is read, until the time is up. Every answer
//! must be 2xx; one that is not ends the run, because a rate of errors is no figure.
//!
//! Not wrk or oha: both report a bad answer only as a count after the run, and this loop runs
//! in the bench's process on its pinned load core, between the /proc reads of the server's CPU.

use crate::client::{Connection, Request};
use crate::error::{Error, Result};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What one load achieved.
#[derive(Debug)]
pub struct Load {
    /// Answers received.
    pub requests: usize,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Load {
    /// Answers per second of wall time.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `request` to `addr` over `connections` connections for `duration`.
pub async fn closed_loop(
    addr: SocketAddr,
    request: &Request,
    connections: usize,
    duration: Duration,
) -> Result<Load> {
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(Connection::open(addr).await?);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = JoinSet::new();
    for connection in opened {
        tasks.spawn(one_connection(connection, request.clone(), deadline));
    }
    let mut latencies = Vec::new();
    let mut last = start;
    while let Some(joined) = tasks.join_next().await {
        let (times, finished) =
            joined.map_err(|e| Error::Answer(format!("a load task failed: {e}")))??;
        latencies.extend(times);
        last = last.max(finished);
    }
    latencies.sort_unstable();
    let percentile = |p: usize| {
        latencies
            .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Load {
        requests: latencies.len(),
        elapsed: last - start,
        p50: percentile(50),
        p99: percentile(99),
    })
}

/// One connection's loop: its latencies and when its last answer came.
async fn one_connection(
    mut connection: Connection,
    request: Request,
    deadline: Instant,
) -> Result<(Vec<Duration>, Instant)> {
    let mut times = Vec::new();
    let mut now = Instant::now();
    while now < deadline {
        connection.send(&request).await?.success(&request)?;
        let answered = Instant::now();
        times.push(answered - now);
        now = answered;
    }
    Ok((times, now))
}

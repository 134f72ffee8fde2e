//! The floor: what OpenSSL's RSA-2048 takes on the measured core right now. The machines this
//! runs on are shared and noisy, so it is measured several times through the run, and every
//! figure is set against the floors taken just before and just after it.

use crate::error::{Error, Result};
use crate::process::Cores;
use std::process::Command;

/// One `openssl speed rsa2048`: seconds per operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    /// Seconds per RSA-2048 signature (private key).
    pub sign: f64,
    /// Seconds per RSA-2048 verification (public key).
    pub verify: f64,
}

/// Every floor of the run, in the order taken.
#[derive(Debug)]
pub struct Floors {
    cores: Cores,
    enabled: bool,
    taken: Vec<Floor>,
    version: Option<String>,
}

impl Floors {
    /// No floor yet; `enabled` false (`BENCH_ONLY` without `floor`) makes [`Floors::take`] a
    /// no-op, and every ratio then stays empty.
    pub fn new(cores: Cores, enabled: bool) -> Self {
        Floors {
            cores,
            enabled,
            taken: Vec::new(),
            version: None,
        }
    }

    /// Measures the floor now, on the server core; its index, for the figure measured next.
    pub fn take(&mut self) -> Result<Option<usize>> {
        if !self.enabled {
            return Ok(None);
        }
        crate::note(format!(
            "floor: openssl speed -seconds 1 rsa2048 on core {}",
            self.cores.server
        ));
        let out = self.cores.output_on_server(
            Command::new("openssl").args(["speed", "-seconds", "1", "rsa2048"]),
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        let floor = parse_speed(&text)
            .ok_or_else(|| Error::Answer(format!("cannot read openssl speed's output:\n{text}")))?;
        if self.version.is_none() {
            self.version = Some(openssl_version()?);
        }
        self.taken.push(floor);
        Ok(Some(self.taken.len() - 1))
    }

    /// The mean of floor `at` and the one after it (if one was taken).
    pub fn around(&self, at: usize) -> Option<Floor> {
        let near = self.taken.get(at..(at + 2).min(self.taken.len()))?;
        let n = near.len() as f64;
        (!near.is_empty()).then(|| Floor {
            sign: near.iter().map(|f| f.sign).sum::<f64>() / n,
            verify: near.iter().map(|f| f.verify).sum::<f64>() / n,
        })
    }

    /// Every floor taken.
    pub fn taken(&self) -> &[Floor] {
        &self.taken
    }

    /// OpenSSL's version (`3.0.19`), once a floor was taken.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

fn openssl_version() -> Result<String> {
    let out = Command::new("openssl")
        .arg("version")
        .output()
        .map_err(|e| Error::io("openssl version", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.split_whitespace().nth(1).unwrap_or("?").to_owned())
}

/// Reads the summary `openssl speed rsa2048` ends with: a header naming the columns and one
/// row, `rsa 2048 bits` and the values. The rate columns (`sign/s`, `verify/s`) are taken by
/// name, because they carry more digits than the seconds columns and because OpenSSL 3.2 and
/// later add encryption columns between them.
fn parse_speed(out: &str) -> Option<Floor> {
    let lines: Vec<&str> = out.lines().collect();
    let row = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with("rsa"))?;
    let header: Vec<&str> = lines[..row]
        .iter()
        .rfind(|l| l.contains("sign/s"))?
        .split_whitespace()
        .collect();
    let values: Vec<f64> = lines[row]
        .split_once("bits")?
        .1
        .split_whitespace()
        .map(|v| v.trim_end_matches('s').parse().ok())
        .collect::<Option<_>>()?;
    let rate = |column: &str| {
        let i = header.iter().position(|h| *h == column)?;
        values.get(i).filter(|r| **r > 0.0).map(|r| 1.0 / r)
    };
    Some(Floor {
        sign: rate("sign/s")?,
        verify: rate("verify/s")?,
    })
}

#[cfg(test)]
mod tests {
    use super::{Floor, parse_speed};

    #[test]
    fn reads_openssl_3_0() {
        let out = "                  sign    verify    sign/s verify/s\n\
                   rsa 2048 bits 0.000234s 0.000014s   4000.0  80000.0\n";
        assert_eq!(
            parse_speed(out),
            Some(Floor {
                sign: 1.0 / 4000.0,
                verify: 1.0 / 80000.0
            })
        );
    }

    #[test]
    fn reads_openssl_3_2_with_encryption_columns() {
        let out = "version: 3.5.0\n\
                   \x20                  sign    verify    encrypt   decrypt   sign/s verify/s  encr./s  decr./s\n\
                   rsa   2048 bits 0.000529s 0.000017s 0.000018s 0.000538s   2000.0  50000.0  56078.0   1858.2\n";
        assert_eq!(
            parse_speed(out),
            Some(Floor {
                sign: 1.0 / 2000.0,
                verify: 1.0 / 50000.0
            })
        );
    }

    #[test]
    fn refuses_other_output() {
        assert_eq!(
            parse_speed("rsa 2048 bits: Doing 2048 bits private rsa's\n"),
            None
        );
    }
}

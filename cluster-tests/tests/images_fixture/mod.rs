//! The images tests' HTTP server: serves files by path with Range support (206, 416), an ETag,
//! a log of every request's path and Range header, and an optional stall (a response from byte
//! 0 sends some bytes and then nothing, with the connection open, until cleared). A fixture
//! on loopback, not a mock of anything Quantix talks to.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request: path and Range header.
type Logged = (String, Option<String>);

/// The fixture server: files by path, a log of (path, Range header), and an optional stall.
#[derive(Clone, Default)]
pub struct Files {
    pub files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    pub log: Arc<Mutex<Vec<Logged>>>,
    /// (path, bytes): a request for `path` from byte 0 sends this many bytes, then stalls
    /// with the connection open, until `stall` is cleared.
    pub stall: Arc<Mutex<Option<(String, usize)>>>,
    /// A pause after every 64 KiB chunk of a body (a slow server).
    pub throttle: Arc<Mutex<Option<Duration>>>,
}

impl Files {
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.files
            .lock()
            .expect("fixture lock")
            .insert(path.into(), bytes);
    }

    pub fn ranges(&self, path: &str) -> Vec<Option<String>> {
        self.log
            .lock()
            .expect("fixture lock")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Serves on a loopback port until the test ends; returns the base URL.
    pub async fn serve(&self) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fixture server");
        let port = l.local_addr().expect("fixture address").port();
        let base = format!("http://127.0.0.1:{port}");
        let me = self.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let me = me.clone();
                tokio::spawn(async move {
                    let _ = me.answer(s).await;
                });
            }
        });
        base
    }

    async fn answer(&self, mut s: tokio::net::TcpStream) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).await? == 0 {
                return Ok(());
            }
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        let range = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("Range: ")
                    .or_else(|| l.strip_prefix("range: "))
            })
            .map(|r| r.trim().to_string());
        self.log
            .lock()
            .expect("fixture lock")
            .push((path.clone(), range.clone()));
        let Some(body) = self.files.lock().expect("fixture lock").get(&path).cloned() else {
            s.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
            return Ok(());
        };
        let total = body.len();
        let start = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok());
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..8]));
        let (status, from, extra) = match start {
            Some(n) if n >= total => {
                let h = format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                s.write_all(h.as_bytes()).await?;
                return Ok(());
            }
            Some(n) => (
                "206 Partial Content",
                n,
                format!("Content-Range: bytes {n}-{}/{total}\r\n", total - 1),
            ),
            None => ("200 OK", 0, String::new()),
        };
        let h = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nETag: {etag}\r\n{extra}Connection: close\r\n\r\n",
            total - from
        );
        s.write_all(h.as_bytes()).await?;
        let stall = self.stall.lock().expect("fixture lock").clone();
        if let Some((p, n)) = stall.filter(|(p, _)| *p == path && from == 0) {
            s.write_all(&body[..n]).await?;
            s.flush().await?;
            // Hold the connection, sending nothing, until the test clears the stall.
            while self
                .stall
                .lock()
                .expect("fixture lock")
                .as_ref()
                .is_some_and(|(q, _)| *q == p)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return Ok(());
        }
        let throttle = *self.throttle.lock().expect("fixture lock");
        for chunk in body[from..].chunks(64 * 1024) {
            s.write_all(chunk).await?;
            if let Some(pause) = throttle {
                tokio::time::sleep(pause).await;
            }
        }
        Ok(())
    }
}

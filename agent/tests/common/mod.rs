//! Helpers shared by the integration tests: temporary files and a minimal HTTP server on
//! 127.0.0.1 that records the requests it receives.
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudgov_agent::wire::{IngestAck, IngestBatch};

pub const TOKEN: &str = "test-token-0123456789";

/// A file in a per-test temporary directory.
pub fn temp_file(test: &str, name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cloudgov-agent-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn batch(&self) -> IngestBatch {
        serde_json::from_slice(&self.body).expect("request body is an IngestBatch")
    }
}

/// Serves HTTP/1.1 on 127.0.0.1:0, one request per connection. Answers with `script` in order
/// and repeats its last entry once the script is used up. Returns the address and the log of
/// received requests.
pub fn serve(script: Vec<(u16, String)>) -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    serve_on(TcpListener::bind("127.0.0.1:0").expect("bind"), script)
}

/// [`serve`] on a listener the caller bound, e.g. to bring a server back on a known port.
pub fn serve_on(
    listener: TcpListener,
    script: Vec<(u16, String)>,
) -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    let addr = listener.local_addr().expect("local addr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let Some(request) = read_request(&mut stream) else {
                continue;
            };
            let (status, body) = script
                .get(i)
                .or(script.last())
                .cloned()
                .unwrap_or((200, String::new()));
            log2.lock().expect("log lock").push(request);
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (addr, log)
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

pub fn ack(accepted: usize) -> String {
    serde_json::to_string(&IngestAck {
        accepted,
        duplicates: 0,
    })
    .expect("encode ack")
}

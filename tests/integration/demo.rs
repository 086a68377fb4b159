//! `cloudgov demo`: the one command a new user runs shows findings of every kind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[tokio::test]
async fn the_demo_shows_downsize_and_expand_findings_and_serves_them() {
    crate::helpers::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--agent-interval",
            "1",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start demo");
    let stdout = child.stdout.take().expect("stdout");
    let child = crate::helpers::KillOnDrop(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        text.push_str(&line);
        text.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let base = text
        .lines()
        .find_map(|l| l.trim().strip_suffix("/healthz"))
        .map(str::to_owned);
    let api_token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("API token: "))
        .map(str::to_owned);
    let result = async {
        let base = base.ok_or("no URL printed")?;
        let token = api_token.ok_or("no API token printed")?;
        let unauthenticated = reqwest::get(format!("{base}/api/v1/findings"))
            .await
            .map_err(|e| e.to_string())?
            .status();
        if unauthenticated != reqwest::StatusCode::UNAUTHORIZED {
            return Err(format!("findings without a token: {unauthenticated}"));
        }
        let findings: serde_json::Value = reqwest::Client::new()
            .get(format!("{base}/api/v1/findings"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(findings)
    }
    .await;
    drop(child);

    for verdict in [" downsize ", " expand ", " ok ", " insufficient_data "] {
        assert!(
            text.contains(verdict),
            "demo output lacks {verdict:?}:\n{text}"
        );
    }
    assert!(text.contains("demo-this-host"), "{text}");
    let findings = result.expect("findings served");
    let list = findings.as_array().expect("array");
    assert_eq!(list.len(), 36, "12 VMs x 3 resources");
    assert!(list.iter().any(|f| f["verdict"] == "downsize"));
    assert!(list.iter().any(|f| f["verdict"] == "expand"));
}

//! Agent -> daemon over TLS (rustls): the real daemon with a certificate, the real agent trusting
//! it through `CLOUDGOV_AGENT_CA_FILE`, and client certificates when the daemon requires them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::{INVENTORY, KillOnDrop, agent_binary, fresh_db, ok, write_file};

struct Pem {
    cert: String,
    key: String,
}

fn self_signed(names: &[&str]) -> Pem {
    let generated =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("generate certificate");
    Pem {
        cert: generated.cert.pem(),
        key: generated.signing_key.serialize_pem(),
    }
}

fn start_tls_daemon(db_url: &str, args: &[&str]) -> (KillOnDrop, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloudgov"))
        .args(["--db", db_url, "serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start daemon");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let base = line
        .trim()
        .strip_prefix("cloudgov listening on ")
        .expect("address")
        .to_owned();
    (KillOnDrop(child), base)
}

fn agent_once(
    base: &str,
    token: &str,
    spool: &std::path::Path,
    extra: &[(&str, String)],
) -> std::process::Output {
    let mut cmd = Command::new(agent_binary());
    cmd.env("CLOUDGOV_AGENT_SERVER", base)
        .env("CLOUDGOV_AGENT_TOKEN", token)
        .env("CLOUDGOV_AGENT_SPOOL_DIR", spool)
        .env("RUST_LOG", "error")
        .arg("--once");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().expect("run agent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_report_over_tls_and_with_client_certificates() {
    let db = fresh_db().await;
    ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &[
            "import",
            "inventory",
            &write_file(&db.dir, "inv.toml", INVENTORY),
        ],
    ));
    let token = ok(crate::helpers::cloudgov_cmd(
        &db.url,
        &["vm", "issue-token", "agent-01"],
    ))
    .trim()
    .to_owned();
    let server = self_signed(&["127.0.0.1", "localhost"]);
    let cert = write_file(&db.dir, "server.pem", &server.cert);
    let key = write_file(&db.dir, "server.key", &server.key);
    let spool = db.dir.path().join("spool");

    // Server TLS: the agent trusts the daemon's certificate, and only then connects.
    let (daemon, base) = start_tls_daemon(&db.url, &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let refused = agent_once(&base, &token, &spool, &[]);
    assert!(
        !refused.status.success(),
        "an unknown certificate must be refused"
    );
    let trusted = agent_once(
        &base,
        &token,
        &spool,
        &[("CLOUDGOV_AGENT_CA_FILE", cert.clone())],
    );
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    drop(daemon);
    // Samples are unique per VM and second: the next accepted report must come a second later.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // Mutual TLS: without a client certificate signed by the configured CA, no handshake.
    let client = self_signed(&["agent-01"]);
    let client_ca = write_file(&db.dir, "client-ca.pem", &client.cert);
    let identity = write_file(
        &db.dir,
        "client.pem",
        &format!("{}{}", client.cert, client.key),
    );
    let (_daemon, base) = start_tls_daemon(
        &db.url,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &client_ca,
        ],
    );
    let anonymous = agent_once(
        &base,
        &token,
        &spool,
        &[("CLOUDGOV_AGENT_CA_FILE", cert.clone())],
    );
    assert!(
        !anonymous.status.success(),
        "a client without a certificate must be refused"
    );
    let with_cert = agent_once(
        &base,
        &token,
        &spool,
        &[
            ("CLOUDGOV_AGENT_CA_FILE", cert.clone()),
            ("CLOUDGOV_AGENT_CLIENT_IDENTITY_FILE", identity),
        ],
    );
    assert!(
        with_cert.status.success(),
        "{}",
        String::from_utf8_lossy(&with_cert.stderr)
    );

    let store = cloudgov::store::Store::connect(&db.url)
        .await
        .expect("store");
    let key_of = store.vm_keys().await.expect("keys")["agent-01"];
    assert_eq!(
        store.count_samples(Some(key_of)).await.expect("count"),
        2,
        "one report per successful run"
    );
}

//! `/metrics` and the Grafana dashboards in `dashboards/`: the exposition is well formed, exports
//! exactly the documented names, and the dashboards use only those.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{INVENTORY, ok, spawn_app, write_file};

fn metric_names_in(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("cloudgov_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "expr" {
                    out.push(v.as_str().unwrap_or_default().to_owned());
                } else {
                    exprs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_export_the_documented_names_and_dashboards_use_only_them() {
    let mut app = spawn_app().await;
    ok(app.cloudgov(&[
        "import",
        "inventory",
        &write_file(&app.db.dir, "inv.toml", INVENTORY),
    ]));
    ok(app.cloudgov(&["tick", "--at", "2025-06-30T12:00:00+08:00"]));
    // The metrics-only listener needs no token and serves the same exposition.
    let metrics_base = app.metrics_listener().await;
    let open = reqwest::get(format!("{metrics_base}/metrics"))
        .await
        .expect("get");
    assert_eq!(open.status(), reqwest::StatusCode::OK);
    assert!(
        open.text()
            .await
            .expect("text")
            .contains("# TYPE cloudgov_")
    );
    let other = reqwest::get(format!("{metrics_base}/api/v1/findings"))
        .await
        .expect("get");
    assert_eq!(
        other.status(),
        reqwest::StatusCode::NOT_FOUND,
        "only /metrics there"
    );
    let unauthenticated = reqwest::get(app.url("/metrics")).await.expect("get");
    assert_eq!(unauthenticated.status(), reqwest::StatusCode::UNAUTHORIZED);
    let resp = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(app.staff_token().await)
        .send()
        .await
        .expect("get");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let text = resp.text().await.expect("text");
    let mut exported = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            exported.insert(rest.split(' ').next().unwrap_or_default().to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(series.starts_with("cloudgov_"), "{line}");
    }
    let documented: BTreeSet<String> = cloudgov::http::metrics::METRIC_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        exported, documented,
        "every documented metric is exported, and only those"
    );
    assert!(
        text.contains("cloudgov_vms{department=\"health\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("cloudgov_deadlines{kind=\"deployment\",state=\"overdue\"}"),
        "{text}"
    );

    let dir = format!("{}/dashboards", env!("CARGO_MANIFEST_DIR"));
    let mut dashboards = 0;
    for entry in std::fs::read_dir(&dir).expect("dashboards dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        dashboards += 1;
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
            .expect("valid JSON");
        assert!(
            json["panels"].as_array().is_some_and(|p| !p.is_empty()),
            "{} has no panels",
            path.display()
        );
        let mut all = Vec::new();
        exprs(&json, &mut all);
        assert!(!all.is_empty());
        for expr in &all {
            for name in metric_names_in(expr) {
                let base = name.trim_end_matches("_bucket").to_owned();
                assert!(
                    documented.contains(&base),
                    "{} uses {name}, which the daemon does not export",
                    path.display()
                );
            }
        }
    }
    assert!(dashboards >= 1);
    app.stop().await;
}

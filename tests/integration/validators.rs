//! What the daemon hands to other tools passes those tools' own validators: the OpenAPI
//! document (`openapi-spec-validator`, from PyPI) and `/metrics` (`promtool check metrics`,
//! from Debian's prometheus). Both are installed by `tests/run`.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{INVENTORY, ok, spawn_app, write_file};

/// The Python that has the test tools: `CLOUDGOV_TEST_PYTHON` (set by `tests/run`), else `python3`.
fn python_with(module: &str) -> String {
    let candidates = std::env::var("CLOUDGOV_TEST_PYTHON")
        .map(|p| vec![p])
        .unwrap_or_else(|_| vec!["python3".into()]);
    candidates
        .iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", &format!("import {module}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no Python with {module}: run tests/run, which installs it into a venv \
                 (or pip install openapi-spec-validator and set CLOUDGOV_TEST_PYTHON); tried {candidates:?}"
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_passes_openapi_spec_validator() {
    let app = spawn_app().await;
    let text = reqwest::get(app.url("/api/v1/openapi.json"))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let path = write_file(&app.db.dir, "openapi.json", &text);
    let python = python_with("openapi_spec_validator");
    let out = Command::new(&python)
        .args([
            "-c",
            "import sys\n\
             from openapi_spec_validator import validate\n\
             from openapi_spec_validator.readers import read_from_filename\n\
             spec, _ = read_from_filename(sys.argv[1])\n\
             validate(spec)\n\
             print('valid')",
            &path,
        ])
        .output()
        .expect("run the validator");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("valid"),
        "openapi-spec-validator rejects the document:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every operation documents its errors, each with the error body.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let responses = op["responses"].as_object().expect("responses");
            let errors: Vec<&String> = responses
                .keys()
                .filter(|code| code.starts_with('4') || code.starts_with('5'))
                .collect();
            assert!(
                errors.iter().any(|c| c.starts_with('5')),
                "{method} {path} documents no server error: {errors:?}"
            );
            for code in errors {
                let schema = &responses[code]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {code}"
                );
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
            }
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool() {
    let promtool = std::path::Path::new("/usr/bin/promtool");
    assert!(
        promtool.exists(),
        "promtool missing: run tests/run, which installs Debian's prometheus (apt-get install prometheus)"
    );
    let app = spawn_app().await;
    ok(app.cloudgov(&[
        "import",
        "inventory",
        &write_file(&app.db.dir, "inv.toml", INVENTORY),
    ]));
    ok(app.cloudgov(&["tick"]));
    let token = app.staff_token().await;
    let body = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(body.contains("cloudgov_"), "{body}");
    let file = std::fs::File::open(write_file(&app.db.dir, "metrics.txt", &body)).expect("file");
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(file)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

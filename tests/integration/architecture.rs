//! ARCHITECTURE.md's invariants, checked: the pure modules do no IO and know nothing of the
//! database, the web server, e-mail or the runtime.

const PURE: &[&str] = &[
    "src/rules/mod.rs",
    "src/rules/evaluate.rs",
    "src/calendar.rs",
    "src/deadlines.rs",
    "src/details.rs",
    "src/network.rs",
    "src/rollup.rs",
    "src/review/score.rs",
    "src/domain.rs",
    "src/inventory.rs",
    "src/chart.rs",
    "src/kubernetes/model.rs",
];

const FORBIDDEN: &[&str] = &[
    "sqlx",
    "axum",
    "lettre",
    "reqwest",
    "tokio",
    "std::fs",
    "std::net::TcpStream",
    "Utc::now",
    "SystemTime::now",
    "kube::",
    "k8s_openapi",
];

#[test]
fn pure_modules_do_no_io() {
    for path in PURE {
        let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
            .expect("read source");
        // Tests may read fixtures; the module itself may not.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for word in FORBIDDEN {
            assert!(
                !code.contains(word),
                "{path} mentions {word}: it must stay pure (ARCHITECTURE.md)"
            );
        }
    }
}

#[test]
fn only_the_store_names_sqlx() {
    let src = format!("{}/src", env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![std::path::PathBuf::from(&src)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if !path.ends_with("store") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read");
                let code = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect::<Vec<_>>()
                    .join("\n");
                assert!(
                    !code.contains("sqlx::"),
                    "{} uses sqlx outside src/store",
                    path.display()
                );
            }
        }
    }
}

//! ARCHITECTURE.md's invariants, checked: the pure core does no IO and knows nothing of the
//! database, the web server, e-mail or the runtime; only the store names sqlx; and `src/`'s
//! top-level modules import one way, core (pure) <- store <- jobs <- http <- daemon <- cli,
//! with no cycle among them. A file may name `crate::X` only for an X of a lower layer than its
//! own (or its own module); `telemetry` is a leaf that imports nothing of the crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

/// Every file of the pure core (`src/core/`): tests may read fixtures; the module itself may
/// not do IO, read the clock, or name the crates of the layers above.
#[test]
fn the_core_does_no_io() {
    let core = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut files = Vec::new();
    rust_files(&core, &mut files);
    assert!(files.len() >= 15, "the core has its modules: {files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read source");
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
                "{} mentions {word}: the core must stay pure (ARCHITECTURE.md)",
                path.display()
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

/// The layers, lowest first. A module may import only modules listed before it.
const LAYERS: &[&str] = &["core", "store", "jobs", "http", "daemon", "cli"];
/// Modules outside the layers that import nothing of the crate.
const LEAVES: &[&str] = &["telemetry"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string (a URL) is rare in `crate::` lines; cut at the first one
            // only when it starts the line's comment.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file names as `crate::X`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let before = rest[..i].chars().next_back().unwrap_or(' ');
        // `$crate::` in macros names the crate too; `other_crate::` does not.
        if !(before.is_ascii_alphanumeric() || before == '_' || name.is_empty()) {
            out.insert(name);
        }
        rest = after;
    }
    out
}

/// Every (from, to) edge between top-level modules, with a file that makes it.
fn edges() -> BTreeMap<(String, String), String> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel
            .components()
            .next()
            .expect("a component")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if first == "lib" || first == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for to in imports(&code(&text)) {
            if to != first {
                edges
                    .entry((first.clone(), to))
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    edges
}

#[test]
fn every_top_level_module_is_a_known_layer_or_leaf() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).expect("read src") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        assert!(
            LAYERS.contains(&name.as_str()) || LEAVES.contains(&name.as_str()),
            "src/{name} is neither a layer ({LAYERS:?}) nor a leaf ({LEAVES:?}): \
             place it in a layer and add it to ARCHITECTURE.md"
        );
    }
}

#[test]
fn layers_import_only_downwards() {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    for ((from, to), file) in edges() {
        if LEAVES.contains(&from.as_str()) {
            panic!("{file}: the leaf `{from}` imports crate::{to}");
        }
        let (Some(f), Some(t)) = (rank(&from), rank(&to)) else {
            panic!("{file}: crate::{to} is not a layer ({LAYERS:?})");
        };
        assert!(
            t < f,
            "{file}: `{from}` imports crate::{to}, a layer above or beside it \
             ({}); layers import downwards only",
            LAYERS.join(" <- ")
        );
    }
}

#[test]
fn no_import_cycle_among_top_level_modules() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in edges().into_keys() {
        graph.entry(from).or_default().insert(to);
    }
    // Depth-first search with the path on the stack: a back edge is a cycle, reported whole.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            panic!("import cycle: {}", cycle.join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_checks_see_imports_in_every_form() {
    let found = imports(&code(
        "use crate::store::Store;\nfn f() { crate::jobs::tick(); }\n// crate::cli::x\n\
         let x = $crate::core::domain::VmId;\nuse other_crate::thing;",
    ));
    assert_eq!(
        found,
        ["core", "jobs", "store"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}

/// Jobs take the world as arguments: nothing under `src/jobs/` reads an environment variable
/// (the CLI reads them once at start-up), and `jobs::notify` reads no file and no clock either:
/// its instant, SMTP settings, templates and fonts come from its caller.
#[test]
fn jobs_read_no_environment_and_notify_no_file_or_clock() {
    let jobs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/jobs");
    let mut files = Vec::new();
    rust_files(&jobs, &mut files);
    // A module's own tests (`#[cfg(test)]` below it, or a `tests.rs` beside it) may read files.
    for path in files.into_iter().filter(|p| !p.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(&path).expect("read");
        let code = code(text.split("#[cfg(test)]").next().unwrap_or_default());
        assert!(
            !code.contains("std::env"),
            "{} reads the environment: take it as an argument (ARCHITECTURE.md)",
            path.display()
        );
        if path.components().any(|c| c.as_os_str() == "notify") {
            for word in ["std::fs", "Utc::now", "SystemTime"] {
                assert!(
                    !code.contains(word),
                    "{} mentions {word}: notify gets files and the clock from its caller",
                    path.display()
                );
            }
        }
    }
}

/// The agent crate never depends on the daemon: it runs on every VM and must stay small, and
/// the daemon takes the report schema from it (`cloudgov_agent::wire`), not the other way.
#[test]
fn the_agent_depends_on_nothing_of_the_daemon() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("agent/Cargo.toml")).expect("agent manifest");
    let manifest: toml::Table = toml::from_str(&manifest).expect("agent manifest parses");
    let tables = manifest
        .iter()
        .filter(|(k, _)| k.ends_with("dependencies"))
        .map(|(_, v)| v.clone())
        .chain(
            manifest
                .get("target")
                .and_then(|t| t.as_table())
                .into_iter()
                .flat_map(|targets| targets.values())
                .filter_map(|t| t.as_table())
                .flat_map(|t| {
                    t.iter()
                        .filter(|(k, _)| k.ends_with("dependencies"))
                        .map(|(_, v)| v.clone())
                }),
        );
    let mut names = 0;
    for table in tables {
        for (name, spec) in table.as_table().expect("a dependency table") {
            names += 1;
            assert!(name != "cloudgov", "the agent depends on the daemon");
            let path = spec.get("path").and_then(|p| p.as_str()).unwrap_or("");
            assert!(
                path.is_empty(),
                "the agent depends on a path crate {name} = {path}: keep it standalone"
            );
        }
    }
    assert!(names > 5, "the manifest's dependencies were read ({names})");
    let mut files = Vec::new();
    rust_files(&root.join("agent/src"), &mut files);
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            !code(&text).contains("cloudgov::"),
            "{} names the daemon's crate",
            path.display()
        );
    }
}

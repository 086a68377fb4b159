//! Network registration checks (art. 14) end to end: a registry imported from CSV, an agent
//! report posted to the running daemon, ARP exports imported, `network check` through the binary.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::helpers::{INVENTORY, TestApp, ok, spawn_app, write_file};

fn ago(hours: i64) -> String {
    (Utc::now() - TimeDelta::hours(hours)).to_rfc3339()
}

/// The first TP-Link prefix of the shipped IEEE subset, as `aa:bb:cc`.
fn tp_link_oui() -> String {
    cloudgov::core::network::BUILTIN_ROUTER_OUIS
        .lines()
        .find(|l| l.contains(",TP-Link,"))
        .and_then(|l| l.split(',').next())
        .expect("a TP-Link OUI in the shipped list")
        .to_owned()
}

async fn post_report(app: &TestApp, token: &str) {
    let report = json!({"reports": [{
        "seq": 1, "collected_at": ago(1),
        "host": {"hostname": "agent-01", "machine_id": null, "os": "Linux", "agent_version": "test"},
        "cpu_pct": 10.0, "mem_pct": 40.0, "filesystems": [],
        "capacity": {"vcpus": 2, "memory_bytes": 4_294_967_296u64, "disk_bytes": 0},
        "interfaces": [{"name": "eth0", "mac": "52:54:00:AA:00:20", "addresses": [
            {"ip": "10.2.0.20", "prefix": 24, "config": "dhcp", "config_source": "networkmanager:/etc/NetworkManager/system-connections/eth0.nmconnection"},
            {"ip": "2001:db8::20", "prefix": 64, "config": "static", "config_source": "netplan:/etc/netplan/50.yaml"},
            {"ip": "fe80::5054:ff:feaa:20", "prefix": 64, "config": "unknown"}
        ]}],
        "neighbours": [{"ip": "10.2.0.99", "mac": format!("{}:00:00:99", tp_link_oui().to_uppercase()), "interface": "eth0"}]
    }]});
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/ingest"))
        .bearer_auth(token)
        .json(&report)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
}

fn findings(app: &TestApp) -> Vec<Value> {
    let out = ok(app.cloudgov(&[
        "network",
        "check",
        "--at",
        &Utc::now().to_rfc3339(),
        "--format",
        "json",
    ]));
    serde_json::from_str(&out).expect("network check prints a JSON array")
}

fn has(all: &[Value], kind: &str, ip: &str) -> bool {
    all.iter().any(|f| f["kind"] == kind && f["ip"] == ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_from_agent_reports_and_arp_exports() {
    let app = spawn_app().await;
    ok(app.cloudgov(&[
        "import",
        "inventory",
        &write_file(&app.db.dir, "inv.toml", INVENTORY),
    ]));
    let token = ok(app.cloudgov(&["vm", "issue-token", "agent-01"]))
        .trim()
        .to_owned();

    // MACs in several spellings; an IPv6 registration; a printer never seen since January.
    let registry = "ip,mac,department,holder,registered_on,note,gateway\n\
        10.1.0.5,52:54:00:aa:00:05,health,PC-5,2025-01-02,,\n\
        10.1.0.6,52-54-00-AA-00-06,health,PC-6,2025-01-02,,\n\
        10.1.0.7,5254.00aa.0007,health,Printer,2025-01-02,3rd floor,\n\
        2001:db8::20,52-54-00-aa-00-20,edu,agent-01 v6,2025-01-02,,\n\
        10.1.0.1,52:54:00:aa:00:01,health,core gateway,2025-01-02,,true\n";
    let out = ok(app.cloudgov(&[
        "import",
        "ip-registry",
        &write_file(&app.db.dir, "reg.csv", registry),
    ]));
    assert!(out.contains("5 added"), "{out}");

    post_report(&app, &token).await;

    // The switch's ARP table over three days: 10.1.0.5 moved to a new MAC (one after the
    // other); 10.1.0.6 answered from two MACs at once; one MAC answers for three addresses.
    let arp = format!(
        "ip,mac,seen_at,source\n\
         10.1.0.5,52:54:00:aa:00:05,{d3},core-sw1\n\
         10.1.0.5,52:54:00:BB:00:05,{d2},core-sw1\n\
         10.1.0.5,52-54-00-bb-00-05,{d1},core-sw1\n\
         10.1.0.6,52:54:00:aa:00:06,{d3},core-sw1\n\
         10.1.0.6,52:54:00:bb:00:06,{d2},core-sw1\n\
         10.1.0.6,52:54:00:aa:00:06,{d1},core-sw1\n\
         10.3.0.1,52:54:00:cc:00:01,{d1},core-sw1\n\
         10.3.0.2,52:54:00:cc:00:01,{d1},core-sw1\n\
         10.3.0.3,52:54:00:cc:00:01,{d1},core-sw1\n\
         10.1.0.1,52:54:00:aa:00:01,{d1},core-sw1\n",
        d3 = ago(72),
        d2 = ago(48),
        d1 = ago(24)
    );
    let out = ok(app.cloudgov(&["import", "arp", &write_file(&app.db.dir, "arp.csv", &arp)]));
    assert!(out.contains("imported 10"), "{out}");

    let all = findings(&app);
    // The host that changed its MAC: a mismatch, not a conflict.
    assert!(has(&all, "mac_mismatch", "10.1.0.5"), "{all:#?}");
    assert!(!has(&all, "ip_conflict", "10.1.0.5"), "{all:#?}");
    // Two hosts fighting over one address.
    assert!(has(&all, "ip_conflict", "10.1.0.6"), "{all:#?}");
    let conflict = all
        .iter()
        .find(|f| f["kind"] == "ip_conflict")
        .expect("conflict");
    assert_eq!(conflict["mac"], "52:54:00:aa:00:06,52:54:00:bb:00:06");
    assert_eq!(conflict["department"], "health");
    // The agent's DHCP address, unregistered, in its VM's department.
    let dhcp = all
        .iter()
        .find(|f| f["kind"] == "dhcp_address")
        .expect("dhcp finding");
    assert_eq!(
        (dhcp["ip"].as_str(), dhcp["department"].as_str()),
        (Some("10.2.0.20"), Some("edu"))
    );
    assert!(has(&all, "unregistered_ip", "10.2.0.20"), "{all:#?}");
    // The registered static IPv6 address with its MAC is fine; link-local is never checked.
    assert!(
        all.iter()
            .all(|f| f["ip"] != "2001:db8::20" && f["ip"] != "fe80::5054:ff:feaa:20"),
        "{all:#?}"
    );
    // Private routers: a consumer router maker's MAC in the agent's neighbour table, and one
    // MAC behind three addresses; the registered gateway is not suspected.
    let routers: Vec<&Value> = all
        .iter()
        .filter(|f| f["kind"] == "suspected_router")
        .collect();
    assert!(
        routers
            .iter()
            .any(|f| f["ip"] == "10.2.0.99"
                && f["evidence"].as_str().unwrap_or("").contains("TP-Link")),
        "{routers:#?}"
    );
    assert!(
        routers.iter().any(|f| f["mac"] == "52:54:00:cc:00:01"),
        "{routers:#?}"
    );
    assert!(
        routers.iter().all(|f| f["mac"] != "52:54:00:aa:00:01"),
        "{routers:#?}"
    );
    // The printer registered in January and never seen.
    let stale = all
        .iter()
        .find(|f| f["kind"] == "stale_registration")
        .expect("stale");
    assert_eq!(
        (stale["ip"].as_str(), stale["mac"].as_str()),
        (Some("10.1.0.7"), Some("52:54:00:aa:00:07"))
    );

    // The findings are stored once and e-mailed through the outbox: per department, and to
    // the center for addresses of no known department.
    let opened: Vec<Value> = serde_json::from_str(&ok(
        app.cloudgov(&["network", "findings", "--format", "json"])
    ))
    .expect("json");
    assert_eq!(opened.len(), all.len());
    findings(&app);
    let again: Vec<Value> = serde_json::from_str(&ok(
        app.cloudgov(&["network", "findings", "--format", "json"])
    ))
    .expect("json");
    assert_eq!(again.len(), all.len(), "a second check opens nothing new");
    let outbox: Vec<Value> =
        serde_json::from_str(&ok(app.cloudgov(&["outbox", "list", "--format", "json"])))
            .expect("json");
    let network_jobs: Vec<&Value> = outbox.iter().filter(|o| o["kind"] == "network").collect();
    let departments: std::collections::BTreeSet<String> = network_jobs
        .iter()
        .map(|o| o["department"].as_str().unwrap_or("(center)").to_owned())
        .collect();
    assert_eq!(
        departments,
        ["(center)", "edu", "health"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );

    // Registering the DHCP host's address and the 10.1.0.5 move clears those findings.
    ok(app.cloudgov(&[
        "network",
        "registry",
        "set",
        "10.1.0.5",
        "--mac",
        "52-54-00-BB-00-05",
        "--department",
        "health",
        "--holder",
        "PC-5 (new NIC)",
    ]));
    let after = findings(&app);
    assert!(!has(&after, "mac_mismatch", "10.1.0.5"), "{after:#?}");
    let history: Vec<Value> = serde_json::from_str(&ok(
        app.cloudgov(&["network", "registry", "history", "10.1.0.5"])
    ))
    .expect("json");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["action"], "changed");
    assert_eq!(history[1]["before"]["mac"], "52:54:00:aa:00:05");
    assert_eq!(history[1]["after"]["mac"], "52:54:00:bb:00:05");

    // Export round-trips through import.
    let exported = ok(app.cloudgov(&["export", "ip-registry"]));
    assert!(
        exported.starts_with("ip,mac,department,holder,registered_on,note,gateway\n"),
        "{exported}"
    );
    let out = ok(app.cloudgov(&[
        "import",
        "ip-registry",
        &write_file(&app.db.dir, "export.csv", &exported),
    ]));
    assert!(out.contains("0 added, 0 changed, 5 unchanged"), "{out}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_network_files_name_the_line_and_import_nothing() {
    let app = spawn_app().await;
    ok(app.cloudgov(&[
        "import",
        "inventory",
        &write_file(&app.db.dir, "inv.toml", INVENTORY),
    ]));
    let arp = format!(
        "ip,mac,seen_at,source\n10.1.0.5,52:54:00:aa:00:05,{},sw\n10.1.0.6,52:54:00:aa:00,{},sw\n",
        ago(1),
        ago(1)
    );
    let out = app.cloudgov(&["import", "arp", &write_file(&app.db.dir, "arp.csv", &arp)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("MAC address"),
        "{err}"
    );
    let registry = "ip,mac,department,holder\n10.1.0.5,52:54:00:aa:00:05,health,PC\n10.1.0.6,52:54:00:aa:00:06,nosuch,PC\n";
    let out = app.cloudgov(&[
        "import",
        "ip-registry",
        &write_file(&app.db.dir, "reg.csv", registry),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("line 3") && err.contains("nosuch"),
        "{err}"
    );
    assert!(
        findings(&app).is_empty(),
        "nothing from either rejected file was stored"
    );
    assert_eq!(
        ok(app.cloudgov(&["export", "ip-registry"])).lines().count(),
        1
    );

    let header = app.cloudgov(&[
        "import",
        "arp",
        &write_file(&app.db.dir, "h.csv", "ip,mac,when,source\n"),
    ]);
    assert!(
        String::from_utf8_lossy(&header.stderr)
            .contains("header must be exactly `ip,mac,seen_at,source`")
    );
    app.stop().await;
}

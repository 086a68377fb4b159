-- Network registration (Pingdu art. 14): the IP registry with its history, what the network
-- shows (sightings), and the findings raised from comparing the two.

CREATE TABLE ip_registry (
    ip TEXT PRIMARY KEY,               -- canonical text form (IPv4 dotted, IPv6 compressed)
    mac TEXT NOT NULL,                 -- aa:bb:cc:dd:ee:ff
    department_id TEXT NOT NULL REFERENCES departments (id),
    holder TEXT NOT NULL,
    registered_on TEXT NOT NULL,
    note TEXT NOT NULL,
    gateway INTEGER NOT NULL,          -- a registered gateway may answer for many addresses
    updated_at INTEGER NOT NULL,
    mac_changed_at INTEGER               -- when the binding last moved to another MAC: older sightings of
                                       -- the old MAC are history, not a mismatch
);
CREATE INDEX ip_registry_mac ON ip_registry (mac);

CREATE TABLE ip_registry_history (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL,
    action TEXT NOT NULL,              -- added | changed | removed
    before_json TEXT,                     -- JSON
    after_json TEXT,                      -- JSON
    source TEXT NOT NULL,              -- import FILE | cli | api
    at INTEGER NOT NULL
);
CREATE INDEX ip_registry_history_ip ON ip_registry_history (ip, id);

-- One row per (ip, mac, how it was seen, by whom): first and last time, so a host that moved
-- to another MAC and two hosts fighting over one address can be told apart.
CREATE TABLE ip_sightings (
    ip TEXT NOT NULL,
    mac TEXT NOT NULL,
    kind TEXT NOT NULL,                -- interface (an agent's own address) | neighbour | arp
    source TEXT NOT NULL,              -- agent VM id, or the ARP export's source
    vm_key INTEGER REFERENCES vms (key),
    interface TEXT NOT NULL,
    config TEXT NOT NULL,              -- static | dhcp | unknown (interfaces only)
    config_source TEXT,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (ip, mac, kind, source)
);
CREATE INDEX ip_sightings_last_seen ON ip_sightings (last_seen);
CREATE INDEX ip_sightings_mac ON ip_sightings (mac);

-- A finding stays open while the check keeps raising it; one open per (kind, ip, mac).
CREATE TABLE network_findings (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ip TEXT NOT NULL,
    mac TEXT NOT NULL,                 -- '' where not known
    department_id TEXT REFERENCES departments (id),
    evidence TEXT NOT NULL,
    raised_at INTEGER NOT NULL,
    last_raised_at INTEGER NOT NULL,
    cleared_at INTEGER
);
CREATE UNIQUE INDEX network_findings_one_open ON network_findings (kind, ip, mac) WHERE cleared_at IS NULL;

CREATE TABLE outbox_network_findings (
    outbox_id INTEGER NOT NULL REFERENCES outbox (id),
    finding_id INTEGER NOT NULL REFERENCES network_findings (id),
    PRIMARY KEY (outbox_id, finding_id)
);
CREATE UNIQUE INDEX outbox_network_findings_once ON outbox_network_findings (finding_id);

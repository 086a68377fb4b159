//! The simulated fleet: how each demo VM behaves (its usage profile, since when its agent
//! reports, how its department answers notices, its network identity), the history of samples
//! that follows from it, and the usage its simulated agent reports now.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Asia::Shanghai;

use crate::core::samples::{Hundredths, Sample, SampleRow};

/// A simulated percentage as stored (the profiles stay within 0..=100).
fn pct(v: f64) -> Hundredths {
    Hundredths::from_percent("simulated usage", v.clamp(0.0, 100.0)).unwrap_or(Hundredths::ZERO)
}

/// Since when a VM's agent has reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Only the last `n` days (fewer than 7 -> `insufficient_data`).
    LastDays(i64),
    /// From this month and day of the previous year (or from its delivery, if later).
    PreviousYear(u32, u32),
}

/// How a department answers an adjustment notice of the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Done this many working days after receiving it (10 or fewer: on time).
    After(u32),
    /// Never done: the deadline stays overdue.
    Never,
}

/// How a simulated VM behaves: a night-time base, a working-hours rise, and noise.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub vm: &'static str,
    /// (base, rise in working hours), percent.
    pub cpu: (f64, f64),
    pub mem: (f64, f64),
    /// Disk use today, percent; it grew by [`DISK_GROWTH_PER_YEAR`] points a year before.
    pub disk: f64,
    /// Network traffic in bytes per second per point of CPU, on top of [`QUIET_TRAFFIC_BPS`]
    /// (0: a VM nobody uses any more).
    pub traffic_per_cpu: f64,
    pub since: Since,
    pub answer: Answer,
    /// The address on `eth0`, and whether DHCP configures it (art. 14 wants it static).
    pub ip: &'static str,
    pub mac: &'static str,
    pub dhcp: bool,
    /// The subnet's gateway, in the VM's neighbour table.
    pub gateway: (&'static str, &'static str),
}

/// Traffic every VM has (its agent's own reports, time sync, ARP), bytes per second.
pub const QUIET_TRAFFIC_BPS: f64 = 45.0;

/// Points of disk use a year: data accumulates.
const DISK_GROWTH_PER_YEAR: f64 = 8.0;

const HEALTH_GW: (&str, &str) = ("10.10.1.1", "52:54:00:0a:01:01");
const EDU_GW: (&str, &str) = ("10.20.1.1", "52:54:00:0a:02:01");
const BIGDATA_GW: (&str, &str) = ("10.30.1.1", "52:54:00:0a:03:01");

/// The demo fleet (every VM of `deploy/demo/inventory.toml` but this machine). The profiles
/// are chosen so that today's evaluation has every verdict, and last year's review every
/// verdict: `his` and `ops` keep, `vaccine` and `enrol` are consolidated (idle or overloaded
/// VMs, late or missing adjustments), `edu-oa` is cancelled (idle, unanswered, monitored only
/// since August), `campus-video` was never filed.
pub const FLEET: &[Profile] = &[
    Profile {
        vm: "his-db-01",
        cpu: (30.0, 25.0),
        mem: (55.0, 15.0),
        disk: 62.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(1, 1),
        answer: Answer::After(5),
        ip: "10.10.1.11",
        mac: "52:54:00:10:01:11",
        dhcp: false,
        gateway: HEALTH_GW,
    },
    Profile {
        vm: "his-app-01",
        cpu: (4.0, 10.0),
        mem: (18.0, 8.0),
        disk: 22.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(1, 1),
        answer: Answer::After(6),
        ip: "10.10.1.12",
        mac: "52:54:00:10:01:12",
        dhcp: false,
        gateway: HEALTH_GW,
    },
    Profile {
        vm: "his-app-02",
        cpu: (5.0, 12.0),
        mem: (30.0, 15.0),
        disk: 35.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(1, 1),
        answer: Answer::After(8),
        ip: "10.10.1.13",
        mac: "52:54:00:10:01:13",
        dhcp: false,
        gateway: HEALTH_GW,
    },
    Profile {
        vm: "vaccine-web-01",
        cpu: (20.0, 65.0),
        mem: (40.0, 20.0),
        disk: 55.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(1, 1),
        answer: Answer::After(14),
        ip: "10.10.1.21",
        mac: "52:54:00:10:01:21",
        dhcp: false,
        gateway: HEALTH_GW,
    },
    Profile {
        vm: "vaccine-db-01",
        cpu: (35.0, 20.0),
        mem: (80.0, 8.0),
        disk: 78.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(1, 1),
        answer: Answer::After(13),
        ip: "10.10.1.22",
        mac: "52:54:00:10:01:22",
        dhcp: false,
        gateway: HEALTH_GW,
    },
    Profile {
        vm: "enrol-web-01",
        cpu: (3.0, 8.0),
        mem: (20.0, 12.0),
        disk: 40.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(1, 1),
        answer: Answer::After(12),
        ip: "10.20.1.11",
        mac: "52:54:00:20:01:11",
        dhcp: false,
        gateway: EDU_GW,
    },
    Profile {
        vm: "enrol-web-02",
        cpu: (3.0, 8.0),
        mem: (22.0, 6.0),
        disk: 41.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(1, 1),
        answer: Answer::Never,
        ip: "10.20.1.12",
        mac: "52:54:00:20:01:12",
        // Its address comes from DHCP: a `dhcp_address` finding.
        dhcp: true,
        gateway: EDU_GW,
    },
    Profile {
        vm: "enrol-db-01",
        cpu: (25.0, 20.0),
        mem: (50.0, 15.0),
        disk: 58.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(1, 1),
        answer: Answer::After(9),
        ip: "10.20.1.13",
        mac: "52:54:00:20:01:13",
        dhcp: false,
        gateway: EDU_GW,
    },
    Profile {
        vm: "edu-oa-01",
        cpu: (2.0, 3.0),
        mem: (12.0, 4.0),
        disk: 18.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(8, 1),
        answer: Answer::Never,
        ip: "10.20.1.14",
        mac: "52:54:00:20:01:14",
        dhcp: false,
        gateway: EDU_GW,
    },
    // No longer used: near-zero CPU and traffic since last summer (art. 13 release advice).
    Profile {
        vm: "edu-oa-02",
        cpu: (0.3, 0.1),
        mem: (14.0, 0.2),
        disk: 12.0,
        traffic_per_cpu: 0.0,
        since: Since::PreviousYear(8, 1),
        answer: Answer::Never,
        ip: "10.20.1.15",
        mac: "52:54:00:20:01:15",
        dhcp: false,
        gateway: EDU_GW,
    },
    Profile {
        vm: "video-ingest-01",
        cpu: (80.0, 12.0),
        mem: (60.0, 10.0),
        disk: 86.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(1, 1),
        answer: Answer::Never,
        ip: "10.20.1.21",
        mac: "52:54:00:20:01:21",
        dhcp: false,
        gateway: EDU_GW,
    },
    Profile {
        vm: "video-ingest-02",
        cpu: (60.0, 10.0),
        mem: (40.0, 10.0),
        disk: 30.0,
        traffic_per_cpu: 1500.0,
        since: Since::LastDays(4),
        answer: Answer::Never,
        ip: "10.20.1.22",
        mac: "52:54:00:20:01:22",
        dhcp: false,
        gateway: EDU_GW,
    },
    Profile {
        vm: "ops-monitor-01",
        cpu: (28.0, 10.0),
        mem: (45.0, 10.0),
        disk: 60.0,
        traffic_per_cpu: 1500.0,
        since: Since::PreviousYear(1, 1),
        answer: Answer::After(3),
        ip: "10.30.1.11",
        mac: "52:54:00:30:01:11",
        dhcp: false,
        gateway: BIGDATA_GW,
    },
];

/// The profile of `vm`, if it is simulated.
pub fn profile(vm: &str) -> Option<&'static Profile> {
    FLEET.iter().find(|p| p.vm == vm)
}

/// A small deterministic generator (xorshift64*), so every demo shows the same fleet.
#[derive(Debug, Clone)]
pub struct Noise(u64);

impl Default for Noise {
    fn default() -> Self {
        Noise(0x9E37_79B9_7F4A_7C15)
    }
}

impl Noise {
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Usage in percent at one instant: (cpu, memory, disk), and traffic in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub cpu: f64,
    pub mem: f64,
    pub disk: f64,
    pub rx_bps: u64,
    pub tx_bps: u64,
}

impl Profile {
    /// The usage at `at`. Working hours (9-17 Shanghai, Monday to Friday) carry the load; disk
    /// use was lower the further back from `now`.
    pub fn usage(&self, at: DateTime<Utc>, now: DateTime<Utc>, noise: &mut Noise) -> Usage {
        let local = at.with_timezone(&Shanghai);
        let weekday = !matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
        let busy = if weekday && (9..17).contains(&local.hour()) {
            1.0
        } else {
            0.0
        };
        let years_ago = (now - at).num_seconds().max(0) as f64 / (365.0 * 86_400.0);
        let clamp = |v: f64| v.clamp(0.0, 100.0);
        // A VM's CPU noise is in proportion to its load: an idle VM stays idle.
        let jitter = (self.cpu.0 + self.cpu.1).min(2.0);
        let cpu = clamp(
            self.cpu.0 + self.cpu.1 * busy * (0.7 + 0.3 * noise.next()) + jitter * noise.next(),
        );
        let traffic = QUIET_TRAFFIC_BPS * (0.8 + 0.4 * noise.next()) + self.traffic_per_cpu * cpu;
        Usage {
            cpu,
            rx_bps: (traffic * 0.6) as u64,
            tx_bps: (traffic * 0.4) as u64,
            mem: clamp(
                self.mem.0 + self.mem.1 * busy * (0.8 + 0.2 * noise.next()) + 1.0 * noise.next(),
            ),
            disk: clamp(self.disk - DISK_GROWTH_PER_YEAR * years_ago + 0.5 * noise.next()),
        }
    }

    /// The first instant of the VM's history as of `now`.
    pub fn history_start(&self, delivered_on: NaiveDate, now: DateTime<Utc>) -> DateTime<Utc> {
        let day = match self.since {
            Since::LastDays(n) => return now - TimeDelta::days(n),
            Since::PreviousYear(month, day) => {
                NaiveDate::from_ymd_opt(now.with_timezone(&Shanghai).year() - 1, month, day)
                    .unwrap_or(delivered_on)
            }
        };
        // Agents are installed a couple of days after delivery at the earliest.
        let day = day.max(delivered_on + TimeDelta::days(2));
        Shanghai
            .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map_or(now, |t| t.with_timezone(&Utc))
    }
}

/// Raw samples are dense where the evaluation window looks (every 15 minutes over the last 35
/// days), hourly before: that is what the day aggregates and the annual review read.
const DENSE_DAYS: i64 = 35;

/// Simulated samples of the fleet up to `now`. `vms` gives each VM id its store key and
/// delivery day; VMs not in it are skipped.
pub fn history(
    vms: &std::collections::HashMap<String, (i64, NaiveDate)>,
    now: DateTime<Utc>,
) -> Vec<SampleRow> {
    let mut rows = Vec::new();
    let mut noise = Noise::default();
    let dense_from = now - TimeDelta::days(DENSE_DAYS);
    // On the quarter hour, so the dense part lines up with what an agent every 15 min sends.
    let end = now - TimeDelta::seconds(now.timestamp().rem_euclid(900));
    for p in FLEET {
        let Some(&(vm_key, delivered_on)) = vms.get(p.vm) else {
            continue;
        };
        let start = p.history_start(delivered_on, now);
        let mut at = end;
        while at >= start {
            let u = p.usage(at, now, &mut noise);
            let mut sample =
                Sample::usage(at.timestamp(), pct(u.cpu), pct(u.mem), Some(pct(u.disk)));
            sample.net_rx_bps = Some(u.rx_bps);
            sample.net_tx_bps = Some(u.tx_bps);
            rows.push(SampleRow { vm_key, sample });
            at -= if at > dense_from {
                TimeDelta::minutes(15)
            } else {
                TimeDelta::hours(1)
            };
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Shanghai
            .with_ymd_and_hms(2026, 11, 25, 10, 7, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn history_starts_in_the_previous_year_and_is_dense_only_recently() {
        let delivered = NaiveDate::from_ymd_opt(2024, 3, 15).expect("date");
        let vms = [("his-app-01".to_owned(), (1, delivered))].into();
        let rows = history(&vms, now());
        let first =
            DateTime::from_timestamp(rows.iter().map(|r| r.sample.ts).min().expect("rows"), 0)
                .expect("ts")
                .with_timezone(&Shanghai);
        assert_eq!(
            first.date_naive(),
            NaiveDate::from_ymd_opt(2025, 1, 1).expect("d")
        );
        let recent = rows
            .iter()
            .filter(|r| r.sample.ts > (now() - TimeDelta::days(1)).timestamp())
            .count();
        assert_eq!(recent, 96, "every 15 minutes over the last day");
        let old = rows
            .iter()
            .filter(|r| {
                r.sample.ts > (now() - TimeDelta::days(101)).timestamp()
                    && r.sample.ts <= (now() - TimeDelta::days(100)).timestamp()
            })
            .count();
        assert_eq!(old, 24, "hourly before");
        // Delivered later than the start of the previous year: from delivery plus two days.
        let late = NaiveDate::from_ymd_opt(2025, 2, 10).expect("date");
        let start = FLEET[0].history_start(late, now()).with_timezone(&Shanghai);
        assert_eq!(
            start.date_naive(),
            NaiveDate::from_ymd_opt(2025, 2, 12).expect("d")
        );
    }

    #[test]
    fn working_hours_carry_the_load_and_weekends_rest() {
        let p = profile("vaccine-web-01").expect("profile");
        let at = |d: u32, h: u32| {
            Shanghai
                .with_ymd_and_hms(2026, 11, d, h, 0, 0)
                .single()
                .expect("t")
                .with_timezone(&Utc)
        };
        let mut noise = Noise::default();
        // Wednesday 11:00 vs Wednesday 03:00 and Saturday 11:00.
        assert!(p.usage(at(25, 11), now(), &mut noise).cpu > 60.0);
        assert!(p.usage(at(25, 3), now(), &mut noise).cpu < 25.0);
        assert!(p.usage(at(21, 11), now(), &mut noise).cpu < 25.0);
    }
}

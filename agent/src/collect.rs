//! Collection of one [`Report`] from the local machine with sysinfo: CPU, memory, real
//! filesystems, allocated capacity, host identity; network interfaces, how each address is
//! configured, the neighbour table and the traffic rates ([`crate::interfaces`]); and the
//! number of inbound TCP connections ([`crate::connections`]).
//!
//! A [`Collector`] keeps state between calls because CPU utilisation and traffic rates are
//! differences of two readings: each report's `cpu_pct`, `net_rx_bps` and `net_tx_bps` cover the
//! time since the previous collection (for the first, since the collector was made).
//! [`Collector::collect`] blocks (reads `/proc`, `statvfs` on every mount, and sleeps up to
//! [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] on the first call), so async callers run it on a
//! blocking thread.
//!
//! Disk figures are `df`'s (see [`df_usage`]): blocks reserved for root count neither as used nor
//! as capacity, so `used / total` is the "Use%" operators know.
//!
//! Failures of optional parts (filesystems, interfaces, machine id, OS name, neighbours, traffic,
//! connections) are logged at a limited rate and leave that part empty; a failed `statvfs` falls
//! back to sysinfo's figures, and an unreadable network configuration leaves addresses
//! `unknown`. Network configuration files are read at most once a minute; the kernel's
//! interfaces, address flags and neighbour table on every collection, in-process (rtnetlink; no
//! child process).
//! Failures of the core figures (CPU, memory, hostname) fail the whole collection instead: a
//! report with a made-up 0 % would look like an idle VM to the daemon, which is worse than a
//! missing report.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};
#[cfg(not(target_os = "linux"))]
use sysinfo::{DiskRefreshKind, Disks};

use crate::connections::Connections;
use crate::interfaces::Network;
use crate::netconfig::Classifier;
use crate::ratelimit::LogLimiter;
use crate::wire::{Capacity, Filesystem, HostIdentity, Report};

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("system information is not available on this platform: {0}")]
    Unsupported(#[source] sysinfo::Error),
    #[error("no CPU could be read from the system")]
    NoCpus,
    #[error("CPU utilisation reading is not a number")]
    BadCpuReading,
    #[error("total memory reads as 0")]
    NoMemory,
    #[error("cannot determine the hostname: {0}")]
    Hostname(#[source] sysinfo::Error),
}

/// Files holding the machine id, in order of preference (systemd, then older D-Bus systems).
const MACHINE_ID_PATHS: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/// Stateful collector; see the module documentation.
pub struct Collector {
    system: System,
    /// The mount list where there is no `/proc/self/mounts`.
    #[cfg(not(target_os = "linux"))]
    disks: Disks,
    /// The text of `/proc/self/mounts`, kept to reuse its allocation.
    #[cfg(target_os = "linux")]
    mounts_text: String,
    next_seq: u64,
    /// Taken just after sysinfo's own CPU timestamp, so "our elapsed >= minimum" implies
    /// sysinfo will really compute a new value.
    last_cpu_refresh: Instant,
    limiter: LogLimiter,
    /// Interfaces (classified; configuration files cached), neighbours and traffic counters.
    network: Network,
    connections: Connections,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl Collector {
    /// Creates a collector whose first report has `seq` 1. Takes the first CPU reading.
    pub fn new() -> Result<Self, CollectError> {
        let mut system = System::new().map_err(CollectError::Unsupported)?;
        #[cfg(not(target_os = "linux"))]
        let disks = Disks::new().map_err(CollectError::Unsupported)?;
        let mut limiter = LogLimiter::default();
        // The traffic counters' baseline, taken with the first CPU reading.
        let network = Network::new(Classifier::system(), &mut limiter);
        system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        Ok(Self {
            system,
            #[cfg(not(target_os = "linux"))]
            disks,
            #[cfg(target_os = "linux")]
            mounts_text: String::new(),
            next_seq: 1,
            last_cpu_refresh: Instant::now(),
            limiter,
            network,
            connections: Connections::system(),
        })
    }

    /// Continue the sequence at `next_seq`, e.g. for a collector replacing a lost one.
    pub fn with_next_seq(mut self, next_seq: u64) -> Self {
        self.next_seq = next_seq;
        self
    }

    /// Takes one report. Blocking; see the module documentation. `seq` advances only when a
    /// report is produced, so a gap in `seq` at the daemon means a report was lost in transit.
    pub fn collect(&mut self) -> Result<Report, CollectError> {
        // The first reading after `new` may be too recent for a meaningful difference.
        let since = self.last_cpu_refresh.elapsed();
        if since < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL - since);
        }
        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage());
        self.last_cpu_refresh = Instant::now();
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let collected_at = Utc::now();

        let vcpus = self.system.cpus().len();
        if vcpus == 0 {
            return Err(CollectError::NoCpus);
        }
        let cpu_pct = f64::from(self.system.global_cpu_usage());
        if !cpu_pct.is_finite() {
            return Err(CollectError::BadCpuReading);
        }
        let memory_bytes = self.system.total_memory();
        let mem_pct = memory_used_pct(memory_bytes, self.system.available_memory())
            .ok_or(CollectError::NoMemory)?;
        let hostname = System::host_name().map_err(CollectError::Hostname)?;

        let filesystems = self.filesystems();
        let disk_bytes = filesystems.iter().map(|f| f.total_bytes).sum();
        let network = self.network.read(&mut self.limiter);
        let (net_rx_bps, net_tx_bps) = network
            .rates
            .map(|(rx, tx)| (round2(rx), round2(tx)))
            .unzip();
        let report = Report {
            seq: self.next_seq,
            collected_at,
            host: HostIdentity {
                hostname,
                machine_id: self.machine_id(),
                os: self.os(),
                agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            cpu_pct: round2(cpu_pct.clamp(0.0, 100.0)),
            mem_pct: round2(mem_pct),
            filesystems,
            capacity: Capacity {
                vcpus: u32::try_from(vcpus).unwrap_or(u32::MAX),
                memory_bytes,
                disk_bytes,
            },
            interfaces: network.interfaces,
            neighbours: network.neighbours,
            net_rx_bps,
            net_tx_bps,
            inbound_connections: self.connections.read(&mut self.limiter),
        };
        self.next_seq += 1;
        Ok(report)
    }

    fn filesystems(&mut self) -> Vec<Filesystem> {
        let mut mounts = Vec::new();
        for m in self.mount_table() {
            // statvfs only where it is needed: never on pseudo or remote filesystems.
            if !is_real_filesystem(&m.fs_type, &m.mount_point) {
                continue;
            }
            let (used_bytes, total_bytes) = usage(
                Path::new(&m.mount_point),
                m.total,
                m.available,
                &mut self.limiter,
            );
            mounts.push(Mount {
                device: m.device,
                mount_point: m.mount_point,
                fs_type: m.fs_type,
                total_bytes,
                used_bytes,
            });
        }
        let selected = real_filesystems(mounts);
        if selected.is_empty()
            && let Some(suppressed) = self.limiter.allow("filesystems")
        {
            tracing::warn!(
                kind = "filesystems",
                suppressed,
                "no real filesystem found; reporting none"
            );
        }
        selected
    }

    /// The mounted filesystems: `/proc/self/mounts` on Linux (sysinfo's list would `statvfs`
    /// every mount but NFS, CIFS and autofs itself, which can hang on a dead sshfs or 9p mount,
    /// and reads `/dev/disk/by-id` and every mount point's metadata besides); sysinfo elsewhere.
    #[cfg(target_os = "linux")]
    fn mount_table(&mut self) -> Vec<Listed> {
        use std::io::Read;
        self.mounts_text.clear();
        let read = std::fs::File::open("/proc/self/mounts")
            .and_then(|mut f| f.read_to_string(&mut self.mounts_text));
        if let Err(e) = read {
            if let Some(suppressed) = self.limiter.allow("mounts") {
                tracing::warn!(
                    kind = "mounts",
                    error = %e,
                    suppressed,
                    "cannot read /proc/self/mounts; reporting no filesystem"
                );
            }
            return Vec::new();
        }
        parse_proc_mounts(&self.mounts_text)
    }

    #[cfg(not(target_os = "linux"))]
    fn mount_table(&mut self) -> Vec<Listed> {
        // Storage only: I/O counters and disk kind would cost extra reads for unused data.
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        self.disks
            .iter()
            .map(|d| Listed {
                device: d.name().to_string_lossy().into_owned(),
                mount_point: d.mount_point().to_string_lossy().into_owned(),
                fs_type: d.file_system().to_string_lossy().into_owned(),
                total: d.total_space(),
                available: d.available_space(),
            })
            .collect()
    }

    fn machine_id(&mut self) -> Option<String> {
        for path in MACHINE_ID_PATHS {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    if let Some(id) = parse_machine_id(&text) {
                        return Some(id);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    if let Some(suppressed) = self.limiter.allow("machine_id") {
                        tracing::warn!(
                            kind = "machine_id",
                            path,
                            error = %e,
                            suppressed,
                            "cannot read machine id"
                        );
                    }
                }
            }
        }
        None
    }

    fn os(&mut self) -> String {
        match System::long_os_version() {
            Ok(os) => os,
            Err(e) => {
                if let Some(suppressed) = self.limiter.allow("os") {
                    tracing::warn!(kind = "os", error = %e, suppressed, "cannot read OS version");
                }
                std::env::consts::OS.to_owned()
            }
        }
    }
}

/// Collects one report from a fresh collector, waiting
/// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] so `cpu_pct` and the traffic rates are real
/// measurements. Blocking.
pub fn collect_once() -> Result<Report, CollectError> {
    Collector::new()?.collect()
}

/// One entry of the OS's mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    /// The lister's own size figures (sysinfo's), used where `statvfs` fails; 0 on Linux, so a
    /// filesystem `statvfs` cannot read is left out.
    pub total: u64,
    pub available: u64,
}

/// Parses `/proc/self/mounts` (`device mount-point type options 0 0`, with space, tab, newline
/// and backslash in names written as `\040`, `\011`, `\012`, `\134`). Mount points under `/run`
/// other than `/run/media` are left out, as sysinfo's list did before: they are runtime state,
/// not disks.
pub fn parse_proc_mounts(text: &str) -> Vec<Listed> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (device, mount_point, fs_type) = (fields.next()?, fields.next()?, fields.next()?);
            let mount_point = unescape_octal(mount_point);
            let under = |prefix: &str| Path::new(&mount_point).starts_with(prefix);
            if under("/run") && !under("/run/media") {
                return None;
            }
            Some(Listed {
                device: unescape_octal(device),
                mount_point,
                fs_type: fs_type.to_owned(),
                total: 0,
                available: 0,
            })
        })
        .collect()
}

/// Replaces the kernel's `\ooo` escapes (three octal digits) by the byte they stand for.
fn unescape_octal(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(used, total)` of the filesystem mounted at `path` as `df` computes them (see [`df_usage`]).
///
/// Falls back to the lister's figures (`total - available`, `total`; reserved blocks then count
/// as used; on Linux none, so the filesystem is left out) where `statvfs` is not available or
/// fails, logging the failure at a limited rate.
fn usage(path: &Path, total: u64, available: u64, limiter: &mut LogLimiter) -> (u64, u64) {
    #[cfg(unix)]
    match rustix::fs::statvfs(path) {
        Ok(s) => return df_usage(s.f_blocks, s.f_bfree, s.f_bavail, s.f_frsize),
        Err(e) => {
            if let Some(suppressed) = limiter.allow("statvfs") {
                tracing::warn!(
                    kind = "statvfs",
                    mount_point = %path.display(),
                    error = %e,
                    suppressed,
                    "statvfs failed; reporting the filesystem's raw size (reserved blocks as used) where known, else leaving it out"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, limiter);
    (total.saturating_sub(available), total)
}

/// `(used_bytes, total_bytes)` from `statvfs` figures, as `df` computes "Use%":
/// used = `(f_blocks - f_bfree) * f_frsize`, total = used + `f_bavail * f_frsize`.
///
/// Blocks reserved for root (`f_bfree - f_bavail`) are in neither figure: they are not data, and
/// ordinary users cannot fill them, so counting them as used would make a nearly empty ext4
/// filesystem look 5 % full (or far more where a large reservation is set).
pub fn df_usage(f_blocks: u64, f_bfree: u64, f_bavail: u64, f_frsize: u64) -> (u64, u64) {
    let used = f_blocks.saturating_sub(f_bfree).saturating_mul(f_frsize);
    let available = f_bavail.saturating_mul(f_frsize);
    (used, used.saturating_add(available))
}

/// `(total - available) / total` in percent; `None` when total is 0 (memory unreadable).
fn memory_used_pct(total: u64, available: u64) -> Option<f64> {
    if total == 0 {
        return None;
    }
    let used = total.saturating_sub(available);
    Some((used as f64 * 100.0 / total as f64).clamp(0.0, 100.0))
}

/// Two decimals are far below measurement noise, and they hide f32 artefacts such as
/// 14.634145736694336 in the JSON.
fn round2(pct: f64) -> f64 {
    (pct * 100.0).round() / 100.0
}

/// `/etc/machine-id` holds "uninitialized" during the first boot, which is not an id.
fn parse_machine_id(text: &str) -> Option<String> {
    let id = text.trim();
    (!id.is_empty() && id != "uninitialized").then(|| id.to_owned())
}

/// One mounted filesystem as the OS lists it, before filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    /// Capacity usable by ordinary users, as in [`Filesystem::total_bytes`] (see [`df_usage`]).
    pub total_bytes: u64,
    /// Space holding data, as in [`Filesystem::used_bytes`].
    pub used_bytes: u64,
}

/// Filesystem types that hold no VM disk: kernel interfaces and memory-backed filesystems.
pub const PSEUDO_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sysfs",
    "tmpfs",
    "tracefs",
    // Read-only images (snaps, live media, cloud-init seeds): fixed content, always "100 % used".
    "iso9660",
    "squashfs",
    "udf",
];

/// Filesystems whose space lives elsewhere (another server or the hypervisor host), so it is not
/// this VM's allocation. Their `statvfs` can also hang when the server is gone.
pub const REMOTE_FS_TYPES: &[&str] = &[
    "9p",
    "afs",
    "ceph",
    "cifs",
    "davfs",
    "glusterfs",
    "lustre",
    "ncpfs",
    "nfs",
    "nfs4",
    "smb3",
    "smbfs",
    "sshfs",
    "virtiofs",
];

/// Whether a mount is a real, VM-local filesystem that belongs in a report.
///
/// The rule, by type:
/// - pseudo and memory filesystems ([`PSEUDO_FS_TYPES`], any `cgroup*`) are excluded;
/// - read-only images (`squashfs`, `iso9660`, `udf`) are excluded;
/// - remote and host-shared filesystems ([`REMOTE_FS_TYPES`]) are excluded;
/// - FUSE: `fuse` and `fuse.*` are excluded (userspace, mostly remote: sshfs, s3fs, rclone,
///   lxcfs), but `fuseblk` is kept because it sits on a local block device (e.g. ntfs-3g);
/// - `overlay`/`aufs` are excluded except when mounted at `/` (a container-style root is the
///   only disk such a machine has; elsewhere they re-expose space already counted);
/// - everything else (ext4, xfs, btrfs, zfs, vfat, ...) is kept if its size is not 0.
///
/// Mounts under `/proc`, `/sys` and `/dev` are excluded whatever their type.
pub fn is_real_filesystem(fs_type: &str, mount_point: &str) -> bool {
    let under = |prefix: &str| {
        Path::new(mount_point).starts_with(prefix) // component-wise: "/devices" is not "/dev"
    };
    if under("/proc") || under("/sys") || under("/dev") {
        return false;
    }
    if PSEUDO_FS_TYPES.contains(&fs_type)
        || fs_type.starts_with("cgroup")
        || REMOTE_FS_TYPES.contains(&fs_type)
    {
        return false;
    }
    if fs_type == "fuse" || fs_type.starts_with("fuse.") {
        return false;
    }
    if fs_type == "overlay" || fs_type == "aufs" {
        return mount_point == "/";
    }
    !fs_type.is_empty()
}

/// Filters `mounts` to real filesystems (see [`is_real_filesystem`]) and reports each device
/// once: a device mounted twice (bind mounts, btrfs subvolumes) shares one pool of space, so it
/// is kept at its shortest mount point (`/` over `/var/lib/docker/...`). Sorted by mount point.
///
/// The mounts' figures are passed through unchanged (normally `df`'s, see [`df_usage`]).
pub fn real_filesystems(mounts: impl IntoIterator<Item = Mount>) -> Vec<Filesystem> {
    let mut by_device: HashMap<String, Mount> = HashMap::new();
    for m in mounts {
        if m.total_bytes == 0 || !is_real_filesystem(&m.fs_type, &m.mount_point) {
            continue;
        }
        match by_device.get(&m.device) {
            Some(kept) if shorter_or_equal(&kept.mount_point, &m.mount_point) => {}
            _ => {
                by_device.insert(m.device.clone(), m);
            }
        }
    }
    let mut out: Vec<Filesystem> = by_device
        .into_values()
        .map(|m| Filesystem {
            used_bytes: m.used_bytes,
            total_bytes: m.total_bytes,
            mount_point: m.mount_point,
            fs_type: m.fs_type,
            device: m.device,
        })
        .collect();
    out.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    out
}

/// Orders mount points by length, then lexically, so the choice does not depend on mount order.
fn shorter_or_equal(a: &str, b: &str) -> bool {
    (a.len(), a) <= (b.len(), b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(device: &str, mount_point: &str, fs_type: &str, total: u64, used: u64) -> Mount {
        Mount {
            device: device.into(),
            mount_point: mount_point.into(),
            fs_type: fs_type.into(),
            total_bytes: total,
            used_bytes: used,
        }
    }

    #[test]
    fn real_filesystem_rule() {
        for (t, mp) in [
            ("ext4", "/"),
            ("xfs", "/data"),
            ("btrfs", "/home"),
            ("vfat", "/boot/efi"),
            ("fuseblk", "/mnt/win"),
            ("overlay", "/"),
            ("zfs", "/tank"),
            ("ext4", "/devices"), // not under /dev
        ] {
            assert!(is_real_filesystem(t, mp), "{t} at {mp} should be real");
        }
        for (t, mp) in [
            ("tmpfs", "/run"),
            ("tmpfs", "/tmp"),
            ("devtmpfs", "/dev"),
            ("proc", "/proc"),
            ("sysfs", "/sys"),
            ("cgroup2", "/sys/fs/cgroup"),
            ("cgroup", "/cgroup"),
            ("overlay", "/var/lib/docker/overlay2/x/merged"),
            ("squashfs", "/snap/core/1"),
            ("nsfs", "/run/netns/x"),
            ("nfs4", "/mnt/share"),
            ("cifs", "/mnt/smb"),
            ("virtiofs", "/mnt/host"),
            ("fuse.sshfs", "/mnt/remote"),
            ("fuse.lxcfs", "/var/lib/lxcfs"),
            ("fuse", "/mnt/x"),
            ("ext4", "/dev/shm/x"),
            ("", "/x"),
        ] {
            assert!(!is_real_filesystem(t, mp), "{t} at {mp} should be excluded");
        }
    }

    #[test]
    fn filters_dedupes_and_sorts() {
        let fs = real_filesystems([
            mount("/dev/vda1", "/var/lib/kubelet/pods/x", "ext4", 100, 60),
            mount("tmpfs", "/run", "tmpfs", 10, 0),
            mount("/dev/vdb", "/data", "xfs", 1000, 100),
            mount("/dev/vda1", "/", "ext4", 100, 60),
            mount("/dev/vda1", "/etc/hosts", "ext4", 100, 60),
            mount("/dev/vdc", "/empty", "ext4", 0, 0),
        ]);
        let points: Vec<&str> = fs.iter().map(|f| f.mount_point.as_str()).collect();
        assert_eq!(points, ["/", "/data"]);
        assert_eq!(fs[0].device, "/dev/vda1");
        assert_eq!(fs[0].used_bytes, 60);
        assert_eq!(fs[1].used_bytes, 100);
        assert_eq!(fs[1].total_bytes, 1000);
    }

    #[test]
    fn df_usage_leaves_reserved_blocks_out() {
        // 1000 blocks of 4 KiB: 100 hold data, 900 free, of which 50 reserved for root.
        let (used, total) = df_usage(1000, 900, 850, 4096);
        assert_eq!(used, 100 * 4096);
        assert_eq!(total, (100 + 850) * 4096);
        // This machine's kind of root filesystem: 64 % reserved. df: 20 %; total - avail: 71 %.
        let (used, total) = df_usage(66_053_021, 61_303_997, 19_072_448, 4096);
        assert_eq!(used, 4_749_024 * 4096);
        assert_eq!(total, (4_749_024 + 19_072_448) * 4096);
        assert_eq!((used * 100).div_ceil(total), 20); // df rounds Use% up
        // Empty, and nothing reserved.
        assert_eq!(df_usage(10, 10, 10, 512), (0, 5120));
        // Inconsistent figures (free > blocks) and huge ones must not panic or wrap.
        assert_eq!(df_usage(5, 10, 3, 1), (0, 3));
        assert_eq!(df_usage(u64::MAX, 0, u64::MAX, 4096), (u64::MAX, u64::MAX));
    }

    #[test]
    fn proc_mounts_unescape_and_leave_run_out() {
        let text = "\
/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw,relatime 0 0
/dev/vdb /mnt/my\\040data xfs rw 0 0
/dev/vdc /mnt/tab\\011and\\134slash ext4 rw 0 0
tmpfs /run tmpfs rw 0 0
/dev/vdd /run/containerd/x ext4 rw 0 0
/dev/sdb1 /run/media/usb vfat rw 0 0
/dev/vde /running ext4 rw 0 0
short line
";
        let got: Vec<(String, String, String)> = parse_proc_mounts(text)
            .into_iter()
            .map(|m| (m.device, m.mount_point, m.fs_type))
            .collect();
        let l = |d: &str, m: &str, t: &str| (d.to_owned(), m.to_owned(), t.to_owned());
        assert_eq!(
            got,
            [
                l("/dev/vda", "/", "ext4"),
                l("proc", "/proc", "proc"),
                l("/dev/vdb", "/mnt/my data", "xfs"),
                l("/dev/vdc", "/mnt/tab\tand\\slash", "ext4"),
                l("/dev/sdb1", "/run/media/usb", "vfat"),
                l("/dev/vde", "/running", "ext4"),
            ]
        );
        assert_eq!(unescape_octal("a\\0"), "a\\0", "too short");
        assert_eq!(unescape_octal("a\\999b"), "a\\999b", "not octal");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_machines_mount_table_has_its_root() {
        let text = std::fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
        let mounts = parse_proc_mounts(&text);
        assert!(mounts.iter().any(|m| m.mount_point == "/"), "{mounts:?}");
    }

    #[test]
    fn memory_percentage() {
        assert_eq!(memory_used_pct(0, 0), None);
        assert_eq!(memory_used_pct(200, 50), Some(75.0));
        // available > total must not underflow
        assert_eq!(memory_used_pct(100, 150), Some(0.0));
    }

    #[test]
    fn machine_id_parsing() {
        assert_eq!(
            parse_machine_id("0123456789abcdef0123456789abcdef\n").as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(parse_machine_id("uninitialized\n"), None);
        assert_eq!(parse_machine_id("  \n"), None);
    }

    #[test]
    fn collects_a_plausible_report_with_increasing_seq() {
        let mut c = Collector::new().expect("collector");
        let r1 = c.collect().expect("first report");
        let r2 = c.collect().expect("second report");
        assert_eq!((r1.seq, r2.seq), (1, 2));
        assert!(r2.collected_at >= r1.collected_at);
        assert!((0.0..=100.0).contains(&r1.cpu_pct), "{}", r1.cpu_pct);
        assert!(r1.mem_pct > 0.0 && r1.mem_pct <= 100.0, "{}", r1.mem_pct);
        assert!(r1.capacity.vcpus >= 1);
        assert!(r1.interfaces.iter().all(|i| i.name != "lo"));
        // Rates on the first report too (measured over the start-up baseline).
        for r in [&r1, &r2] {
            for bps in [r.net_rx_bps, r.net_tx_bps] {
                let bps = bps.expect("traffic rates");
                assert!(bps.is_finite() && bps >= 0.0, "{bps}");
            }
        }
        #[cfg(target_os = "linux")]
        assert!(r1.inbound_connections.is_some());
        assert_eq!(
            r1.capacity.disk_bytes,
            r1.filesystems.iter().map(|f| f.total_bytes).sum::<u64>()
        );
        assert!(r1.filesystems.iter().all(|f| f.used_bytes <= f.total_bytes));
    }
}

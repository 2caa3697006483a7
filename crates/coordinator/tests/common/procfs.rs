//! Process figures from `/proc/self` (Linux): resident memory and open file descriptors.

/// Resident memory now and at its peak (`VmRSS`, `VmHWM`), in KiB; 0 where unknown.
pub fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Open file descriptors (entries of `/proc/self/fd`); 0 where unknown.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// One line: RSS, peak RSS and open fds.
pub fn snapshot() -> String {
    let (rss, hwm) = rss_kib();
    format!(
        "RSS {:.1} MiB (peak {:.1} MiB), {} open fds",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        open_fds()
    )
}

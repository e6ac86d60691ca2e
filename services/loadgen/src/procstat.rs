//! What the server under load costs, read from `/proc`: the resident memory and CPU time of
//! its processes (a server may be several, such as Rekor with Trillian's log server and
//! signer), and of every process of its database.

/// Resident memory of the server's processes together.
pub fn rss_kib(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// CPU time (user + system) of the server's processes and of every process whose command
/// name is in `also` (PostgreSQL's backends), in microseconds.
pub fn cpu_us(pids: &[u32], also: &[String]) -> Option<u64> {
    let ticks = |stat: &str| -> Option<u64> {
        // the fields after the command name (which may hold spaces) in parentheses
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    };
    if pids.is_empty() {
        return None;
    }
    let mut total = 0;
    for pid in pids {
        total += ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    }
    if !also.is_empty() {
        let names: Vec<String> = also.iter().map(|n| format!("({n})")).collect();
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            if names.iter().any(|n| stat.contains(n.as_str())) {
                total += ticks(&stat).unwrap_or(0);
            }
        }
    }
    // clock ticks are 1/100 s on Linux
    Some(total * 10_000)
}

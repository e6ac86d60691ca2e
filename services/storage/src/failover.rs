//! Several PostgreSQL servers in one URL, as libpq takes them
//! (`postgres://user@db1:5432,db2:5432/sigstack?target_session_attrs=read-write`): the
//! pool connects to the first server that answers (with `read-write` or `primary`: the
//! first that is not a standby), and a watcher moves it to another when that server stops
//! answering or turns read-only — as after a failover, when the standby is promoted.

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use std::time::Duration;

/// How often the watcher checks the server in use.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// How long one server may take to answer a check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A URL with its hosts apart: one single-host URL per server, and whether a server
/// that accepts writes is required.
#[derive(Debug, PartialEq, Eq)]
pub struct Hosts {
    pub urls: Vec<String>,
    pub read_write: bool,
}

/// Splits `url`; `Err` names what is wrong with it.
pub fn split(url: &str) -> Result<Hosts, String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut read_write = false;
    let mut kept = Vec::new();
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        match pair.split_once('=') {
            Some(("target_session_attrs", v)) => match v {
                "read-write" | "primary" => read_write = true,
                "any" => {}
                other => {
                    return Err(format!(
                        "target_session_attrs={other} is not supported (read-write, primary or any)"
                    ));
                }
            },
            _ if !pair.is_empty() => kept.push(pair),
            _ => {}
        }
    }
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    let urls: Vec<String> = hosts
        .split(',')
        .map(|h| format!("{scheme}://{user}{h}{path}{query}"))
        .collect();
    if urls.len() > 1 && hosts.split(',').any(str::is_empty) {
        return Err("an empty host in the host list".into());
    }
    Ok(Hosts { urls, read_write })
}

/// Whether the server `opts` names answers, and accepts writes if `read_write`.
async fn usable(opts: &PgConnectOptions, read_write: bool) -> Result<(), String> {
    let check = async {
        let mut c = PgConnection::connect_with(opts)
            .await
            .map_err(|e| e.to_string())?;
        let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        let _ = c.close().await;
        if read_write && standby {
            return Err("a standby (read-only)".to_string());
        }
        Ok(())
    };
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(r) => r,
        Err(_) => Err("no answer".into()),
    }
}

/// The first usable server, from `start` on (in order, wrapping).
pub async fn pick(
    servers: &[PgConnectOptions],
    start: usize,
    read_write: bool,
) -> Result<usize, String> {
    let mut why = Vec::new();
    for i in (0..servers.len()).map(|k| (start + k) % servers.len()) {
        match usable(&servers[i], read_write).await {
            Ok(()) => return Ok(i),
            Err(e) => why.push(format!(
                "{}:{}: {e}",
                servers[i].get_host(),
                servers[i].get_port()
            )),
        }
    }
    Err(format!("no usable database server ({})", why.join("; ")))
}

/// Keeps `pool` on a usable server until it is closed.
pub fn watch(pool: PgPool, servers: Vec<PgConnectOptions>, mut current: usize, read_write: bool) {
    tokio::spawn(async move {
        while !pool.is_closed() {
            tokio::time::sleep(WATCH_EVERY).await;
            if usable(&servers[current], read_write).await.is_ok() {
                continue;
            }
            match pick(&servers, current + 1, read_write).await {
                Ok(next) if next != current => {
                    tracing::warn!(
                        from = %format!("{}:{}", servers[current].get_host(), servers[current].get_port()),
                        to = %format!("{}:{}", servers[next].get_host(), servers[next].get_port()),
                        "the database server in use stopped answering or became read-only: switching"
                    );
                    pool.set_connect_options(servers[next].clone());
                    current = next;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "waiting for a usable database server"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_split_and_the_session_attribute_read() {
        let h = split("postgres://u:p@a:1,b:2/db?sslmode=disable&target_session_attrs=read-write")
            .expect("split");
        assert_eq!(
            h.urls,
            [
                "postgres://u:p@a:1/db?sslmode=disable",
                "postgres://u:p@b:2/db?sslmode=disable"
            ]
        );
        assert!(h.read_write);
        let h = split("postgres://a/db").expect("split");
        assert_eq!(h.urls, ["postgres://a/db"]);
        assert!(!h.read_write);
        let h = split("postgresql://u@[::1]:5,h/x?target_session_attrs=any").expect("split");
        assert_eq!(h.urls, ["postgresql://u@[::1]:5/x", "postgresql://u@h/x"]);
        assert!(split("postgres://a,,b/db").is_err());
        // a socket directory instead of a host
        let h = split("postgres:///db?host=/run/postgresql").expect("split");
        assert_eq!(h.urls, ["postgres:///db?host=/run/postgresql"]);
        assert!(split("postgres://a/db?target_session_attrs=standby").is_err());
    }
}

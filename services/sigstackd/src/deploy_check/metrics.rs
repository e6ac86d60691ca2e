//! The README's metrics table names every metric a service exports (operators build
//! dashboards and alerts from it): the names are found in the sources as string literals.

use super::repo;

/// Every metric a service exports is in the README's table (operators build dashboards
/// and alerts from it).
#[test]
fn every_metric_is_in_the_readme() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let mut names = std::collections::BTreeSet::new();
    let mut stack = vec![
        repo().join("services/sigstackd/src"),
        repo().join("services/http/src"),
    ];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            // metric names are string literals: "sigstack_<service>_<what>"
            for (i, _) in text.match_indices("\"sigstack_") {
                let name: String = text[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                // a histogram's series are listed under its own name
                let name = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name)
                    .to_string();
                if name.matches('_').count() >= 2 && !name.ends_with('_') {
                    names.insert(name);
                }
            }
        }
    }
    assert!(
        names.contains("sigstack_log_up"),
        "the scan finds metrics: {names:?}"
    );
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !readme.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics missing from the README's table: {missing:?}"
    );
}

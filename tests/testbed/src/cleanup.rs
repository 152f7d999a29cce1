//! Tearing the test bed down so that nothing is left: processes, mounts, cgroups, namespaces,
//! veths, the bridge and the directories. Works from names alone (see [`crate::layout`]), so a
//! killed or failed run is cleaned up as well as a finished one.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{layout, procs, sh};

/// Unmounts every mount point under any of `roots`, deepest first, lazily: a busy mount of a
/// dead container must not stop the cleanup.
pub fn unmount_under(roots: &[&Path]) {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| point.replace("\\040", " "))
        .filter(|point| roots.iter().any(|root| Path::new(point).starts_with(root)))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for point in points {
        sh::run_quiet("umount", &["--lazy", &point]);
    }
}

/// Removes the cgroup `name` (and its children) from every controller hierarchy, killing what
/// is still in it.
pub fn remove_cgroups(name: &str) {
    let Ok(controllers) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for controller in controllers.flatten() {
        let dir = controller.path().join(name);
        if dir.is_dir() {
            remove_cgroup_tree(&dir);
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(children) = fs::read_dir(dir) {
        for child in children.flatten() {
            if child.path().is_dir() {
                remove_cgroup_tree(&child.path());
            }
        }
    }
    let pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    procs::signal(&pids, "KILL");
    // A cgroup can be removed only once its last process is reaped.
    for _ in 0..20 {
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything `up` made, gone. Idempotent; returns what it could not remove.
pub fn down() -> Vec<String> {
    let mut left = Vec::new();
    // Ask politely first: a dockerd given SIGTERM stops its containers and unmounts.
    let pids = procs::of_testbed();
    procs::signal(&pids, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !procs::of_testbed().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    procs::kill_until_gone(procs::of_testbed);

    unmount_under(&[Path::new(layout::RUN_DIR), Path::new(layout::DATA_DIR)]);
    for cgroup in cgroup_names() {
        remove_cgroups(&cgroup);
    }
    for netns in names_with_prefix(
        &sh::run("ip", &["netns", "list"]).unwrap_or_default(),
        layout::NETNS_PREFIX,
    ) {
        sh::run_quiet("ip", &["netns", "del", &netns]);
    }
    let links = sh::run("ip", &["-o", "link", "show"]).unwrap_or_default();
    for veth in link_names(&links, layout::VETH_PREFIX) {
        sh::run_quiet("ip", &["link", "del", &veth]);
    }
    sh::run_quiet("ip", &["link", "del", layout::BRIDGE]);
    for dir in [layout::RUN_DIR, layout::DATA_DIR] {
        if Path::new(dir).exists() && fs::remove_dir_all(dir).is_err() {
            left.push(format!("directory {dir}"));
        }
    }
    left.extend(leftovers());
    left
}

/// What of the test bed still exists: processes, mounts, namespaces, links, cgroups.
pub fn leftovers() -> Vec<String> {
    let mut left: Vec<String> = procs::of_testbed()
        .iter()
        .map(|pid| format!("process {pid}"))
        .collect();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    left.extend(
        mountinfo
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|p| p.starts_with(layout::RUN_DIR) || p.starts_with(layout::DATA_DIR))
            .map(|p| format!("mount {p}")),
    );
    let netns = sh::run("ip", &["netns", "list"]).unwrap_or_default();
    left.extend(
        names_with_prefix(&netns, layout::NETNS_PREFIX)
            .into_iter()
            .map(|n| format!("netns {n}")),
    );
    let links = sh::run("ip", &["-o", "link", "show"]).unwrap_or_default();
    left.extend(
        link_names(&links, layout::VETH_PREFIX)
            .into_iter()
            .map(|l| format!("link {l}")),
    );
    if link_names(&links, layout::BRIDGE)
        .iter()
        .any(|l| l == layout::BRIDGE)
    {
        left.push(format!("link {}", layout::BRIDGE));
    }
    left.extend(cgroup_names().into_iter().map(|c| format!("cgroup {c}")));
    left
}

/// Names at the start of the lines of `ip netns list` that start with `prefix`.
fn names_with_prefix(listing: &str, prefix: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Link names from `ip -o link show` (`7: tbv-m1@if2: <...>`) that start with `prefix`.
fn link_names(listing: &str, prefix: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name))
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// The test bed's cgroups, by name, across every controller.
fn cgroup_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|controller| {
            fs::read_dir(controller.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
        .filter(|name| name.starts_with(layout::CGROUP_PREFIX))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_are_read_from_ip_one_line_output() {
        let listing = "1: lo: <LOOPBACK,UP> mtu 65536\n7: tbv-m1@if2: <BROADCAST> mtu 1500 master tbbr0\n8: tbbr0: <BROADCAST>\n";
        assert_eq!(link_names(listing, "tbv-"), vec!["tbv-m1"]);
        assert_eq!(link_names(listing, "tbbr0"), vec!["tbbr0"]);
    }

    #[test]
    fn namespace_names_are_read_from_ip_netns_list() {
        let listing = "tb-w1 (id: 4)\nother\ntb-m1\n";
        assert_eq!(names_with_prefix(listing, "tb-"), vec!["tb-w1", "tb-m1"]);
    }
}

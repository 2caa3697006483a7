//! Network-namespace helpers shared by the multi-host tests (`crates/transport-tcp/tests/netns.rs`,
//! `crates/coordinator/tests/netns.rs`), included with `#[path]` so there is one copy.
//!
//! A test makes its namespaces and veth pairs through [`Namespaces`], which removes them on
//! drop; where they cannot be made (not root, no `ip`, no namespaces) the first call fails with
//! the reason and the test prints it and passes as skipped. Tasks run inside a namespace as a
//! child process, `ip netns exec <ns> <this test binary> --exact <test>` ([`exec_in`]).
#![allow(dead_code, unreachable_pub)]

use std::process::Command;

/// Runs `ip` with `args`; `Err` with its stderr if it fails.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Namespaces and veth pairs made by one test; removed on drop.
#[derive(Default)]
pub struct Namespaces {
    /// The namespaces, in the order they were added.
    pub names: Vec<String>,
    /// This side's veth ends (gone with their namespaces; deleted too in case setup failed
    /// before the pair was split).
    links: Vec<String>,
}

impl Namespaces {
    /// Adds the namespace `ns` (with its loopback up).
    pub fn add(&mut self, ns: &str) -> Result<(), String> {
        ip(&["netns", "add", ns])?;
        self.names.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])
    }

    /// A veth pair between this namespace (`outer`, address `outer_cidr`) and `ns` (`inner`,
    /// address `inner_cidr`), both ends up.
    pub fn veth(
        &mut self,
        ns: &str,
        (outer, outer_cidr): (&str, &str),
        (inner, inner_cidr): (&str, &str),
    ) -> Result<(), String> {
        ip(&["link", "add", outer, "type", "veth", "peer", "name", inner])?;
        self.links.push(outer.to_owned());
        ip(&["link", "set", inner, "netns", ns])?;
        ip(&["addr", "add", outer_cidr, "dev", outer])?;
        ip(&["link", "set", outer, "up"])?;
        ip(&["-n", ns, "addr", "add", inner_cidr, "dev", inner])?;
        ip(&["-n", ns, "link", "set", inner, "up"])
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end, and with it the pair.
        for ns in &self.names {
            let _ = ip(&["netns", "del", ns]);
        }
        for link in &self.links {
            let _ = ip(&["link", "del", link]);
        }
    }
}

/// A command that runs the test `test` of this test binary inside namespace `ns`.
pub fn exec_in(ns: &str, test: &str) -> Command {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(exe).args([
        "--exact",
        test,
        "--nocapture",
        "--test-threads",
        "1",
    ]);
    cmd
}

//! The `msrv` step of `cargo xtask ci`: the declared `rust-version` must be true for the lockfile.
//!
//! It reads `cargo metadata --locked` (every package the lockfile resolves, for every target
//! platform, so a dependency that only Android or macOS builds counts too) and fails when:
//!
//! - a workspace member declares a `rust-version` other than the workspace's, or none; or
//! - a locked dependency declares a `rust-version` newer than the workspace's.
//!
//! The check reads only metadata; it does not need the old toolchain installed, which this
//! machine cannot fetch. A dependency that declares no `rust-version` cannot be checked this way
//! and is listed in the output.

use std::cmp::Ordering;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// A Rust version as `major.minor.patch` (a missing patch is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RustVersion(u32, u32, u32);

impl RustVersion {
    /// Parses `1.89` or `1.89.0`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().unwrap_or(Some(0))?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self(major, minor, patch))
    }
}

impl std::fmt::Display for RustVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One package of the metadata: name, version, declared rust-version, workspace member or not.
#[derive(Debug)]
pub(crate) struct Package {
    /// The package name.
    pub(crate) name: String,
    /// Its version.
    pub(crate) version: String,
    /// Its declared `rust-version`, if any.
    pub(crate) rust_version: Option<RustVersion>,
    /// Whether it is a member of this workspace.
    pub(crate) member: bool,
}

/// Runs the check in the workspace at `root`, printing what it found.
pub(crate) fn check(root: &Path) -> Result<()> {
    println!(
        "[{}] $ cargo metadata --format-version 1 --locked",
        root.display()
    );
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).context("cargo metadata JSON")?;
    let packages = packages(&metadata)?;
    let verdict = judge(&packages)?;
    println!(
        "msrv: declared {}; newest need among {} locked dependencies: {} ({}); {} declare none",
        verdict.declared,
        verdict.dependencies,
        verdict.newest.0,
        verdict.newest.1,
        verdict.undeclared
    );
    Ok(())
}

/// The packages of a `cargo metadata` document.
fn packages(metadata: &Value) -> Result<Vec<Package>> {
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .context("workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let list = metadata["packages"].as_array().context("packages")?;
    list.iter()
        .map(|p| {
            let id = p["id"].as_str().context("package id")?;
            Ok(Package {
                name: p["name"].as_str().context("package name")?.to_owned(),
                version: p["version"].as_str().unwrap_or("?").to_owned(),
                rust_version: p["rust_version"].as_str().and_then(RustVersion::parse),
                member: members.contains(&id),
            })
        })
        .collect()
}

/// What [`judge`] found when the check passes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The workspace's declared rust-version.
    pub(crate) declared: RustVersion,
    /// The newest rust-version a dependency declares, and which dependency.
    pub(crate) newest: (RustVersion, String),
    /// How many dependencies were checked.
    pub(crate) dependencies: usize,
    /// How many of them declare no rust-version.
    pub(crate) undeclared: usize,
}

/// Checks the packages: every member declares the same version, no dependency needs a newer one.
pub(crate) fn judge(packages: &[Package]) -> Result<Verdict> {
    let mut declared: Option<RustVersion> = None;
    for member in packages.iter().filter(|p| p.member) {
        let Some(version) = member.rust_version else {
            bail!("workspace member {} declares no rust-version", member.name);
        };
        match declared {
            None => declared = Some(version),
            Some(d) if d != version => bail!(
                "workspace members disagree on rust-version: {d} and {version} ({})",
                member.name
            ),
            Some(_) => {}
        }
    }
    let declared = declared.context("no workspace members")?;
    let mut newest = (RustVersion(0, 0, 0), String::from("none"));
    let mut too_new = Vec::new();
    let (mut dependencies, mut undeclared) = (0, 0);
    for dep in packages.iter().filter(|p| !p.member) {
        dependencies += 1;
        let Some(version) = dep.rust_version else {
            undeclared += 1;
            continue;
        };
        if version.cmp(&declared) == Ordering::Greater {
            too_new.push(format!("{} {} needs {version}", dep.name, dep.version));
        }
        if version > newest.0 {
            newest = (version, format!("{} {}", dep.name, dep.version));
        }
    }
    if !too_new.is_empty() {
        bail!(
            "the workspace declares rust-version {declared}, but locked dependencies need more: {}",
            too_new.join(", ")
        );
    }
    Ok(Verdict {
        declared,
        newest,
        dependencies,
        undeclared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, rust_version: Option<&str>, member: bool) -> Package {
        Package {
            name: name.to_owned(),
            version: "1.0.0".to_owned(),
            rust_version: rust_version.and_then(RustVersion::parse),
            member,
        }
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(RustVersion::parse("1.89"), Some(RustVersion(1, 89, 0)));
        assert_eq!(RustVersion::parse("1.88.1"), Some(RustVersion(1, 88, 1)));
        assert_eq!(RustVersion::parse("1"), None);
        assert_eq!(RustVersion::parse("1.x"), None);
        assert!(RustVersion::parse("1.89").unwrap() > RustVersion::parse("1.88.9").unwrap());
    }

    #[test]
    fn a_dependency_newer_than_declared_fails() {
        let packages = [
            package("ours", Some("1.85"), true),
            package("uuid", Some("1.89"), false),
        ];
        let err = judge(&packages).unwrap_err().to_string();
        assert!(err.contains("uuid 1.0.0 needs 1.89.0"), "{err}");
    }

    #[test]
    fn members_must_agree() {
        let packages = [
            package("a", Some("1.89"), true),
            package("b", Some("1.88"), true),
        ];
        assert!(judge(&packages).is_err());
        assert!(judge(&[package("a", None, true)]).is_err());
    }

    #[test]
    fn a_true_declaration_passes_and_names_the_newest_need() {
        let packages = [
            package("ours", Some("1.89"), true),
            package("uuid", Some("1.89"), false),
            package("time", Some("1.88"), false),
            package("old", None, false),
        ];
        let verdict = judge(&packages).unwrap();
        assert_eq!(
            verdict.newest,
            (RustVersion(1, 89, 0), "uuid 1.0.0".to_owned())
        );
        assert_eq!((verdict.dependencies, verdict.undeclared), (3, 1));
    }
}

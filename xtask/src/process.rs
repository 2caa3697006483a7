//! Child processes: every command is printed before it runs, and fails loudly.
//!
//! [`Cmd`] is a small command-line value (program, arguments, working directory) that can be
//! printed exactly as it will run, run with the terminal inherited, run quietly to probe for a
//! tool, or run with its standard output streamed through and captured at the same time.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;

use anyhow::{bail, Context, Result};

/// A command line to run in a given directory.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    /// The program, looked up in `PATH`.
    program: String,
    /// Its arguments.
    args: Vec<String>,
    /// The working directory.
    dir: PathBuf,
}

/// What a streamed-and-captured run left behind.
#[derive(Debug)]
pub(crate) struct Captured {
    /// How the child exited.
    pub(crate) status: ExitStatus,
    /// Everything the child wrote to its standard output (lossily decoded as UTF-8).
    pub(crate) stdout: String,
}

impl Cmd {
    /// `program` with no arguments, to run in `dir`.
    pub(crate) fn new(program: &str, dir: &Path) -> Self {
        Self {
            program: program.to_owned(),
            args: Vec::new(),
            dir: dir.to_path_buf(),
        }
    }

    /// `cargo <args>` in `dir`. Plain `cargo` from `PATH` (the rustup proxy), so `+nightly` works.
    pub(crate) fn cargo<S: AsRef<str>>(dir: &Path, args: &[S]) -> Self {
        Self::new("cargo", dir).args(args)
    }

    /// Appends one argument.
    pub(crate) fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments.
    pub(crate) fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args.extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Prints the command as it will run, with its directory.
    fn announce(&self) {
        println!("[{}] $ {self}", self.dir.display());
        // Keep our own lines in order with the child's output.
        let _ = io::stdout().flush();
    }

    /// The `std` command for this command line.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).current_dir(&self.dir);
        command
    }

    /// Runs with the terminal inherited; an error if it cannot start or exits non-zero.
    pub(crate) fn run(&self) -> Result<()> {
        self.announce();
        let status = self
            .command()
            .status()
            .with_context(|| format!("could not start `{self}`"))?;
        check(status, self)
    }

    /// Runs quietly (after printing it), returning its standard output if it exited with success
    /// and `None` if it could not start or failed. For probing whether a tool is there.
    pub(crate) fn probe(&self) -> Option<String> {
        self.announce();
        let output = self
            .command()
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs with standard output and error streamed through as they arrive, while keeping a copy
    /// of standard output. Only an error if the child cannot be started or waited for.
    pub(crate) fn run_captured(&self) -> Result<Captured> {
        self.announce();
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{self}`"))?;
        let stdout = child.stdout.take().context("child stdout was not piped")?;
        let stderr = child.stderr.take().context("child stderr was not piped")?;
        let stderr_pump = thread::spawn(move || pump(stderr, io::stderr(), false));
        let kept = pump(stdout, io::stdout(), true);
        let stderr_result = stderr_pump.join();
        let status = child
            .wait()
            .with_context(|| format!("could not wait for `{self}`"))?;
        let kept = kept.with_context(|| format!("reading the output of `{self}`"))?;
        match stderr_result {
            Ok(result) => {
                result.with_context(|| format!("reading the error output of `{self}`"))?;
            }
            Err(_) => bail!("the thread copying the error output of `{self}` panicked"),
        }
        Ok(Captured {
            status,
            stdout: String::from_utf8_lossy(&kept).into_owned(),
        })
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        Ok(())
    }
}

/// An error naming the command if `status` is not success.
pub(crate) fn check(status: ExitStatus, cmd: &Cmd) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        bail!("`{cmd}` failed ({status})")
    }
}

/// Copies `from` to `to` chunk by chunk as it arrives; returns what was read if `keep`.
///
/// Write errors on our side (a closed terminal or pipe) are ignored so that the child is still
/// drained and never blocks on a full pipe.
fn pump(mut from: impl Read, mut to: impl Write, keep: bool) -> io::Result<Vec<u8>> {
    let mut buf = [0_u8; 8192];
    let mut kept = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(kept),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let _ = to.write_all(&buf[..n]).and_then(|()| to.flush());
        if keep {
            kept.extend_from_slice(&buf[..n]);
        }
    }
}

/// Quotes one word for display the way a POSIX shell would need it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=+./:,@%^<>".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_a_shell_line() {
        let cmd = Cmd::cargo(Path::new("."), &["test", "--", "tcp::", "a b", "it's"]);
        assert_eq!(cmd.to_string(), r"cargo test -- tcp:: 'a b' 'it'\''s'");
    }

    #[test]
    fn pump_copies_and_keeps() {
        let mut out = Vec::new();
        let kept = pump(&b"test a ... ok\n"[..], &mut out, true).expect("in-memory copy");
        assert_eq!(out, b"test a ... ok\n");
        assert_eq!(kept, out);
        let kept = pump(&b"x"[..], io::sink(), false).expect("in-memory copy");
        assert!(kept.is_empty());
    }

    #[test]
    fn captures_stdout_and_reports_failure() {
        let dir = std::env::temp_dir();
        let ok = Cmd::new("sh", &dir)
            .args(&["-c", "echo out; echo err >&2"])
            .run_captured()
            .expect("sh runs");
        assert!(ok.status.success());
        assert_eq!(ok.stdout, "out\n");
        let failed = Cmd::new("sh", &dir).args(&["-c", "exit 3"]);
        assert!(failed.run().is_err());
        assert!(failed.probe().is_none());
        assert!(Cmd::new("xtask-no-such-program", &dir).probe().is_none());
    }
}

//! Test support (feature `bluez-emulator`, Linux): [`BluezEmulator`] starts the BlueZ
//! emulator in this crate's `bluez-emu/` (a Python process implementing `org.bluez` on a private
//! `dbus-daemon` it starts with `bluez-emu/bus.conf`) and points this process's
//! btleplug and bluer at it through `DBUS_SYSTEM_BUS_ADDRESS`.
//!
//! The variable is process-wide, so a test binary runs one emulator at a time: use
//! [`BluezEmulator::shared`] (one emulator for the whole binary, with enough adapters for
//! every test, each test taking its own with [`BluezEmulator::lease`]), or start one per
//! binary. The emulator and its bus are killed when the [`BluezEmulator`] is dropped, and
//! also when this process dies: the emulator exits when its standard input (a pipe from this
//! process) closes.
//!
//! When `dbus-daemon`, `python3` or the pinned `dbus-fast` package is missing,
//! [`BluezEmulator::start`] fails with [`EmulatorError::Unavailable`], whose text says what
//! to install; tests print it and skip.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use dbus::blocking::Connection;
use dbus::Path;

const STARTUP: Duration = Duration::from_secs(30);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CONTROL_PATH: &str = "/org/bitcraps/emulator";
const CONTROL: &str = "org.bitcraps.Emulator1";

/// Why the emulator could not be started or controlled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// A prerequisite is missing on this machine; the text says which and how to install it.
    #[error("BlueZ emulator unavailable: {0}")]
    Unavailable(String),
    /// The emulator started but did not come up (its standard error says why).
    #[error("BlueZ emulator failed to start: {0}")]
    Start(String),
    /// A control call failed.
    #[error("BlueZ emulator control call failed: {0}")]
    Control(#[from] dbus::Error),
}

/// A running emulator: its private bus and its adapters (`hci0`, `hci1`, ...).
pub struct BluezEmulator {
    child: Child,
    _stdin: ChildStdin,
    address: String,
    adapters: Vec<String>,
    next: AtomicUsize,
}

impl std::fmt::Debug for BluezEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BluezEmulator")
            .field("address", &self.address)
            .field("adapters", &self.adapters.len())
            .finish_non_exhaustive()
    }
}

/// The emulator's folder in this repository.
pub fn emulator_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bluez-emu")
}

fn check(program: &str, args: &[&str], missing: &str) -> Result<(), EmulatorError> {
    let ok = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if ok {
        Ok(())
    } else {
        Err(EmulatorError::Unavailable(missing.to_string()))
    }
}

impl BluezEmulator {
    /// Starts an emulator with `adapters` adapters whose links default to ATT MTU `mtu`, and
    /// sets `DBUS_SYSTEM_BUS_ADDRESS` to its bus.
    pub fn start(adapters: usize, mtu: u16) -> Result<Self, EmulatorError> {
        check(
            "dbus-daemon",
            &["--version"],
            "no dbus-daemon (Debian: apt-get install dbus)",
        )?;
        check(
            "python3",
            &["-c", "import dbus_fast"],
            "no python3 with dbus-fast (pip install -r crates/transport-ble/bluez-emu/requirements.txt)",
        )?;
        let dir = emulator_dir();
        let mut child = Command::new("python3")
            .arg("-m")
            .arg("bluez_emu")
            .arg("--bus-config")
            .arg(dir.join("bus.conf"))
            .arg("--adapters")
            .arg(adapters.to_string())
            .arg("--mtu")
            .arg(mtu.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| EmulatorError::Start(e.to_string()))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(STARTUP) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(EmulatorError::Start("no READY line in time".into()));
            }
        };
        let mut words = line.split_whitespace();
        let (Some("READY"), Some(address)) = (words.next(), words.next()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(EmulatorError::Start(format!(
                "unexpected first line {line:?}"
            )));
        };
        let adapters = words
            .map(|path| path.trim_start_matches("/org/bluez/").to_string())
            .collect();
        std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", address);
        Ok(Self {
            child,
            _stdin: stdin,
            address: address.to_string(),
            adapters,
            next: AtomicUsize::new(0),
        })
    }

    /// The emulator shared by every test of this binary (started on first use with
    /// `adapters` adapters at MTU `mtu`; later calls get the same one whatever they ask).
    /// `Err` holds why it is unavailable, for the test to print before it skips.
    pub fn shared(adapters: usize, mtu: u16) -> Result<Arc<Self>, String> {
        static SHARED: OnceLock<Result<Arc<BluezEmulator>, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                Self::start(adapters, mtu)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    /// The bus address (also in `DBUS_SYSTEM_BUS_ADDRESS`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Every adapter's name (`hci0`, ...).
    pub fn adapters(&self) -> &[String] {
        &self.adapters
    }

    /// The next adapter no earlier lease took, or `None` when all are taken.
    pub fn lease(&self) -> Option<String> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        self.adapters.get(index).cloned()
    }

    fn call<A: dbus::arg::AppendAll, R: dbus::arg::ReadAll>(
        &self,
        method: &str,
        args: A,
    ) -> Result<R, EmulatorError> {
        let mut channel = dbus::channel::Channel::open_private(&self.address)?;
        channel.register()?;
        let connection = Connection::from(channel);
        let proxy = connection.with_proxy("org.bluez", CONTROL_PATH, CALL_TIMEOUT);
        Ok(proxy.method_call(CONTROL, method, args)?)
    }

    fn path(adapter: &str) -> Path<'static> {
        Path::from(format!("/org/bluez/{adapter}"))
    }

    /// Plugs in a new adapter and returns its name; see [`AdapterLease`] to have it unplugged
    /// when done (keeps the emulator's object tree small over long runs).
    pub fn add_adapter(&self) -> Result<String, EmulatorError> {
        let (path,): (Path<'static>,) = self.call("AddAdapter", ())?;
        Ok(path.trim_start_matches("/org/bluez/").to_string())
    }

    /// Unplugs adapter `name`: its links drop and its objects go.
    pub fn remove_adapter(&self, name: &str) -> Result<(), EmulatorError> {
        self.call("RemoveAdapter", (Self::path(name),))
    }

    /// The ATT MTU of future links between adapters `a` and `b`.
    pub fn set_mtu(&self, a: &str, b: &str, mtu: u16) -> Result<(), EmulatorError> {
        self.call("SetMtu", (Self::path(a), Self::path(b), mtu))
    }

    /// Latency added to every connect and every ATT packet.
    pub fn set_latency(&self, latency: Duration) -> Result<(), EmulatorError> {
        let millis = u32::try_from(latency.as_millis()).unwrap_or(u32::MAX);
        self.call("SetLatency", (millis,))
    }

    /// Whether connections to `adapter` fail (as if it were out of range).
    pub fn set_refuse(&self, adapter: &str, refuse: bool) -> Result<(), EmulatorError> {
        self.call("SetRefuse", (Self::path(adapter), refuse))
    }

    /// Drops the link between `a` and `b` now.
    pub fn drop_link(&self, a: &str, b: &str) -> Result<(), EmulatorError> {
        self.call("DropLink", (Self::path(a), Self::path(b)))
    }

    /// Drops the link between `a` and `b` after `packets` more ATT packets either way.
    pub fn drop_after(&self, a: &str, b: &str, packets: u32) -> Result<(), EmulatorError> {
        self.call("DropAfter", (Self::path(a), Self::path(b), packets))
    }

    /// Whether adapter `name` is discovering (some client has a discovery session).
    pub fn discovering(&self, name: &str) -> Result<bool, EmulatorError> {
        let channel = {
            let mut channel = dbus::channel::Channel::open_private(&self.address)?;
            channel.register()?;
            channel
        };
        let connection = Connection::from(channel);
        let proxy = connection.with_proxy("org.bluez", Self::path(name), CALL_TIMEOUT);
        use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
        Ok(proxy.get("org.bluez.Adapter1", "Discovering")?)
    }

    /// Live links: (adapter, adapter, ATT MTU), adapters by name.
    pub fn links(&self) -> Result<Vec<(String, String, u16)>, EmulatorError> {
        let (links,): (Vec<(Path<'static>, Path<'static>, u16)>,) = self.call("Links", ())?;
        let name = |p: &Path<'_>| p.trim_start_matches("/org/bluez/").to_string();
        Ok(links
            .iter()
            .map(|(a, b, mtu)| (name(a), name(b), *mtu))
            .collect())
    }

    /// The emulator's counters (`connects`, `refused`, `drops`, `writes`, `notifications`,
    /// `acquire_write`, `acquire_notify`).
    pub fn stats(&self) -> Result<std::collections::HashMap<String, u64>, EmulatorError> {
        let (stats,) = self.call("Stats", ())?;
        Ok(stats)
    }
}

/// An adapter plugged in for one user ([`BluezEmulator::add_adapter`]) and unplugged when
/// the lease is dropped.
#[derive(Debug)]
pub struct AdapterLease {
    emulator: Arc<BluezEmulator>,
    name: String,
}

impl AdapterLease {
    /// Plugs in a new adapter for as long as the lease lives.
    pub fn new(emulator: &Arc<BluezEmulator>) -> Result<Self, EmulatorError> {
        Ok(Self {
            name: emulator.add_adapter()?,
            emulator: emulator.clone(),
        })
    }

    /// The adapter's name (`hci7`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for AdapterLease {
    fn drop(&mut self) {
        if let Err(err) = self.emulator.remove_adapter(&self.name) {
            tracing::debug!(error = %err, adapter = %self.name, "unplugging an emulated adapter failed");
        }
    }
}

impl Drop for BluezEmulator {
    fn drop(&mut self) {
        // SIGKILL leaves the bus daemon behind; closing stdin lets the emulator stop it, and
        // the kill below is for an emulator that no longer reads.
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        if self.child.wait_timeout_ok() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

trait WaitTimeout {
    fn wait_timeout_ok(&mut self) -> bool;
}

impl WaitTimeout for Child {
    /// Waits up to 5 s (polling) for the child to exit after SIGTERM.
    fn wait_timeout_ok(&mut self) -> bool {
        for _ in 0..100 {
            if let Ok(Some(_)) = self.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

//! Linux: the ATT MTU BlueZ negotiated, read from the `MTU` property of the remote write
//! characteristic (`org.bluez.GattCharacteristic1`), since btleplug does not expose it.

use std::time::Duration;

use dbus::blocking::stdintf::org_freedesktop_dbus::{Introspectable, Properties};
use dbus::blocking::Connection;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(5);
const CHARACTERISTIC: &str = "org.bluez.GattCharacteristic1";

/// The `MTU` of `characteristic` under the device btleplug names `device`
/// (`hci0/dev_AA_BB_CC_DD_EE_FF`), or `None` when BlueZ does not say.
pub(super) async fn bluez_mtu(device: &str, characteristic: Uuid) -> Option<u16> {
    let prefix = format!("/org/bluez/{device}/");
    let found = tokio::task::spawn_blocking(move || read(&prefix, characteristic)).await;
    match found {
        Ok(Ok(mtu)) => mtu,
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "reading the MTU from BlueZ failed");
            None
        }
        Err(_) => None,
    }
}

fn read(prefix: &str, characteristic: Uuid) -> Result<Option<u16>, dbus::Error> {
    // Walk the device's objects by introspection (a few small calls) rather than asking for
    // every object BlueZ has (`GetManagedObjects` grows with every adapter and device).
    let connection = Connection::new_system()?;
    let wanted = characteristic.to_string();
    let device = prefix.trim_end_matches('/');
    for service in children(&connection, device, "service")? {
        for chrc in children(&connection, &service, "char")? {
            let proxy = connection.with_proxy("org.bluez", chrc.as_str(), TIMEOUT);
            let uuid: String = proxy.get(CHARACTERISTIC, "UUID")?;
            if uuid.eq_ignore_ascii_case(&wanted) {
                return Ok(proxy.get::<u16>(CHARACTERISTIC, "MTU").ok());
            }
        }
    }
    Ok(None)
}

/// The child object paths of `path` whose node names start with `kind`.
fn children(connection: &Connection, path: &str, kind: &str) -> Result<Vec<String>, dbus::Error> {
    let proxy = connection.with_proxy("org.bluez", path, TIMEOUT);
    let xml = proxy.introspect()?;
    Ok(xml
        .split("<node name=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| name.starts_with(kind))
        .map(|name| format!("{path}/{name}"))
        .collect())
}

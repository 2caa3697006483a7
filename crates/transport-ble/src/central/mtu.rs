//! Linux: the ATT MTU BlueZ negotiated, read from the `MTU` property of the remote write
//! characteristic (`org.bluez.GattCharacteristic1`), since btleplug does not expose it.

use std::collections::HashMap;
use std::time::Duration;

use dbus::arg::PropMap;
use dbus::blocking::stdintf::org_freedesktop_dbus::ObjectManager;
use dbus::blocking::Connection;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(5);

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
    let connection = Connection::new_system()?;
    let root = connection.with_proxy("org.bluez", "/", TIMEOUT);
    let objects: HashMap<dbus::Path<'static>, HashMap<String, PropMap>> =
        root.get_managed_objects()?;
    let wanted = characteristic.to_string();
    let mtu = objects.iter().find_map(|(path, interfaces)| {
        if !path.starts_with(prefix) {
            return None;
        }
        let props = interfaces.get("org.bluez.GattCharacteristic1")?;
        let uuid = props.get("UUID")?.0.as_str()?;
        if !uuid.eq_ignore_ascii_case(&wanted) {
            return None;
        }
        u16::try_from(props.get("MTU")?.0.as_u64()?).ok()
    });
    Ok(mtu)
}

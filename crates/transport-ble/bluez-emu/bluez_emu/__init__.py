"""An emulated bluetoothd (`org.bluez` on a private D-Bus bus) for testing BLE stacks."""

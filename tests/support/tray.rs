//! The desktop's side of a tray icon, on a [`PrivateBus`]: what a panel does with an app's
//! StatusNotifierItem.
//!
//! [`TrayHost`] owns `org.kde.StatusNotifierWatcher`, as a desktop's panel does, so the app's tray
//! icon (libayatana-appindicator) registers its item there. [`TrayHost::menu`] then reads the
//! item's menu the way a panel shows it (`com.canonical.dbusmenu.GetLayout`), and
//! [`TrayHost::click`] plays a click on one entry (`Event(id, "clicked")`).

use std::collections::HashMap;

use tokio::sync::watch;
use zbus::{OwnedObjectPath, OwnedVariant as OwnedValue, Variant as Value};

use crate::WAIT;
use crate::dbus::PrivateBus;

const WATCHER: &str = "org.kde.StatusNotifierWatcher";
const WATCHER_PATH: &str = "/StatusNotifierWatcher";

/// A dbusmenu node: its id, its properties, its children (each a node in a variant).
type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

/// One entry of a tray menu, as a panel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    pub id: i32,
    /// Without mnemonic underscores.
    pub label: String,
    pub enabled: bool,
    /// For a check item: whether it is checked.
    pub checked: Option<bool>,
}

/// The panel: a StatusNotifierWatcher, and what registered with it.
pub struct TrayHost {
    connection: zbus::Connection,
    items: watch::Receiver<Vec<(String, String)>>,
}

impl TrayHost {
    /// Owns the watcher's name on `bus` (before the app starts, as a panel would be there).
    pub async fn start(bus: &PrivateBus) -> TrayHost {
        let (items_tx, items) = watch::channel(Vec::new());
        let connection = zbus::connection::Builder::address(bus.address())
            .name(WATCHER)
            .serve_at(WATCHER_PATH, Watcher { items: items_tx })
            .build()
            .await
            .expect("owning the StatusNotifierWatcher's name on the private bus");
        TrayHost { connection, items }
    }

    /// The first item that registered (its bus name and object path), waiting at most [`WAIT`].
    async fn item(&self) -> (String, String) {
        let mut items = self.items.clone();
        let items = tokio::time::timeout(WAIT, items.wait_for(|items| !items.is_empty()))
            .await
            .unwrap_or_else(|_| panic!("no tray item registered within {WAIT:?}"))
            .expect("the watcher lives as long as the host");
        items[0].clone()
    }

    async fn menu_proxy(&self) -> zbus::Proxy<'static> {
        let (name, path) = self.item().await;
        let item = zbus::Proxy::new_owned(
            self.connection.clone(),
            name.clone(),
            path,
            "org.kde.StatusNotifierItem".to_owned(),
        )
        .await
        .expect("a proxy for the tray item");
        let menu: OwnedObjectPath = item
            .get_property("Menu")
            .await
            .expect("the tray item's menu");
        zbus::Proxy::new_owned(
            self.connection.clone(),
            name,
            menu,
            "com.canonical.dbusmenu".to_owned(),
        )
        .await
        .expect("a proxy for the tray menu")
    }

    /// The tray menu's entries, top level, as a panel would show them now.
    pub async fn menu(&self) -> Vec<MenuEntry> {
        let proxy = self.menu_proxy().await;
        let (_revision, (_id, _props, children)): (u32, Layout) = proxy
            .call("GetLayout", &(0i32, 1i32, Vec::<String>::new()))
            .await
            .expect("the tray menu's layout");
        children
            .into_iter()
            .map(|child| {
                let (id, props, _): Layout = child.try_into().expect("a menu entry");
                let text = |key: &str| {
                    props
                        .get(key)
                        .and_then(|v| String::try_from(v.clone()).ok())
                };
                let flag = |key: &str| props.get(key).and_then(|v| bool::try_from(v.clone()).ok());
                MenuEntry {
                    id,
                    label: text("label").unwrap_or_default().replace('_', ""),
                    enabled: flag("enabled").unwrap_or(true),
                    checked: props
                        .get("toggle-state")
                        .and_then(|v| i32::try_from(v.clone()).ok())
                        .map(|state| state == 1),
                }
            })
            .filter(|entry| !entry.label.is_empty())
            .collect()
    }

    /// Clicks the entry labelled `label`.
    pub async fn click(&self, label: &str) {
        let entries = self.menu().await;
        let entry = entries
            .iter()
            .find(|e| e.label == label)
            .unwrap_or_else(|| panic!("no {label:?} in the tray menu: {entries:?}"));
        let proxy = self.menu_proxy().await;
        let () = proxy
            .call("Event", &(entry.id, "clicked", Value::from(0i32), 0u32))
            .await
            .unwrap_or_else(|err| panic!("clicking {label:?} in the tray menu: {err}"));
    }
}

/// The watcher's object: items register here.
struct Watcher {
    items: watch::Sender<Vec<(String, String)>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher", spawn = false)]
impl Watcher {
    async fn register_status_notifier_item(
        &mut self,
        service: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(signal_emitter)] emitter: zbus::object_server::SignalEmitter<'_>,
    ) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        // An item names either its object path (on the caller's connection) or a bus name.
        let (name, path) = if service.starts_with('/') {
            (sender, service.clone())
        } else {
            (service.clone(), "/StatusNotifierItem".to_owned())
        };
        self.items.send_modify(|items| items.push((name, path)));
        let _ = Self::status_notifier_item_registered(&emitter, &service).await;
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .borrow()
            .iter()
            .map(|(name, path)| format!("{name}{path}"))
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }

    #[zbus(signal)]
    async fn status_notifier_item_registered(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        service: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn status_notifier_host_registered(
        emitter: &zbus::object_server::SignalEmitter<'_>,
    ) -> zbus::Result<()>;
}

//! The `redis_lock.*` php.ini entries: the one place their names and
//! defaults are written.

use std::ffi::CStr;

use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::zend::{ExecutorGlobals, IniEntryDef, IniEntryDefs};

const PREFIX: &str = "redis_lock.";

/// The entries that are also the constructors' options, with their
/// defaults, as the API page lists them, in the order `php --ri` shows them.
const TABLE: [(&CStr, &CStr); 10] = [
    (c"redis_lock.dsn", c"redis://127.0.0.1:6379"),
    (c"redis_lock.prefix", c"lock:"),
    (c"redis_lock.ttl", c"5"),
    (c"redis_lock.connect_timeout", c"1.0"),
    (c"redis_lock.timeout", c"1.0"),
    (c"redis_lock.on_unavailable", c"closed"),
    (c"redis_lock.fencing", c"0"),
    (c"redis_lock.replicas", c"0"),
    (c"redis_lock.watchdog", c"auto"),
    (c"redis_lock.watchdog_max", c"3600"),
];

/// The host metrics' entries (api.md "Observability"): php.ini only, read
/// once at module start-up, as every process sharing the table must agree.
/// An empty `metrics_shm` is `/redis_lock.<uid>`.
const METRICS_TABLE: [(&CStr, &CStr); 3] = [
    (c"redis_lock.metrics", c"host"),
    (c"redis_lock.metrics_shm", c""),
    (c"redis_lock.metrics_names", c"20"),
];

const ALL: usize = TABLE.len() + METRICS_TABLE.len();

/// The entries as PHP registers them (both tables, then the end marker).
pub static ENTRIES: IniEntryDefs<{ ALL + 1 }> = IniEntryDefs::new(entries());

const fn entries() -> [IniEntryDef; ALL + 1] {
    let mut defs = [const { IniEntryDef::end() }; ALL + 1];
    let mut i = 0;
    while i < TABLE.len() {
        defs[i] = IniEntryDef::new(TABLE[i].0, TABLE[i].1, IniEntryPermission::All);
        i += 1;
    }
    let mut j = 0;
    while j < METRICS_TABLE.len() {
        let (name, default) = METRICS_TABLE[j];
        defs[i + j] = IniEntryDef::new(name, default, IniEntryPermission::System);
        j += 1;
    }
    defs
}

/// The short names (`dsn`, `prefix`, …): also the constructors' option keys.
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLE
        .iter()
        .filter_map(|(name, _)| name.to_str().ok()?.strip_prefix(PREFIX))
}

/// Every entry's short name, the metrics' too (what `php --ri` shows).
pub fn all_names() -> impl Iterator<Item = &'static str> {
    TABLE
        .iter()
        .chain(METRICS_TABLE.iter())
        .filter_map(|(name, _)| name.to_str().ok()?.strip_prefix(PREFIX))
}

/// Registers the entries; called from module startup.
pub fn register(module_number: i32) {
    IniEntryDef::register(ENTRIES.as_slice(), module_number);
}

/// The current value of `redis_lock.<name>` (after php.ini and `ini_set`),
/// else its default.
pub fn get(name: &str) -> Vec<u8> {
    current(name).unwrap_or_else(|| {
        TABLE
            .iter()
            .chain(METRICS_TABLE.iter())
            .find(|(full, _)| {
                full.to_bytes().strip_prefix(PREFIX.as_bytes()) == Some(name.as_bytes())
            })
            .map(|(_, default)| default.to_bytes().to_vec())
            .unwrap_or_default()
    })
}

fn current(name: &str) -> Option<Vec<u8>> {
    let globals = ExecutorGlobals::get();
    // SAFETY: `ini_directives` is set by zend_ini_startup before any request
    // and stays valid for the process; null only before that.
    let table = unsafe { globals.ini_directives.as_ref() }?;
    let entry = table.get(format!("{PREFIX}{name}").as_str())?;
    // SAFETY: ini_directives holds `zend_ini_entry` pointers owned by the table.
    let entry = unsafe { entry.ptr::<ext_php_rs::ffi::zend_ini_entry>()?.as_ref()? };
    // SAFETY: `value` is a zend_string owned by the entry, or null.
    let value = unsafe { entry.value.as_ref() }?;
    Some(value.as_bytes().to_vec())
}

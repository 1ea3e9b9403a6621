//! The `redis_lock.*` php.ini entries.

use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::zend::{ExecutorGlobals, IniEntryDef, IniEntryDefs};

/// Every entry with its default, as the API page lists them.
pub static ENTRIES: IniEntryDefs<8> = IniEntryDefs::new([
    IniEntryDef::new(
        c"redis_lock.dsn",
        c"redis://127.0.0.1:6379",
        IniEntryPermission::All,
    ),
    IniEntryDef::new(c"redis_lock.prefix", c"lock:", IniEntryPermission::All),
    IniEntryDef::new(c"redis_lock.ttl", c"5", IniEntryPermission::All),
    IniEntryDef::new(
        c"redis_lock.connect_timeout",
        c"1.0",
        IniEntryPermission::All,
    ),
    IniEntryDef::new(c"redis_lock.timeout", c"1.0", IniEntryPermission::All),
    IniEntryDef::new(
        c"redis_lock.on_unavailable",
        c"closed",
        IniEntryPermission::All,
    ),
    IniEntryDef::new(c"redis_lock.fencing", c"0", IniEntryPermission::All),
    IniEntryDef::end(),
]);

/// The short names, in the order `php --ri` shows them.
pub const NAMES: [&str; 7] = [
    "dsn",
    "prefix",
    "ttl",
    "connect_timeout",
    "timeout",
    "on_unavailable",
    "fencing",
];

/// Registers the entries; called from module startup.
pub fn register(module_number: i32) {
    IniEntryDef::register(ENTRIES.as_slice(), module_number);
}

/// The current value of `redis_lock.<name>` (after php.ini and `ini_set`).
pub fn get(name: &str) -> Option<Vec<u8>> {
    let globals = ExecutorGlobals::get();
    // SAFETY: `ini_directives` is set by zend_ini_startup before any request
    // and stays valid for the process; null only before that.
    let table = unsafe { globals.ini_directives.as_ref() }?;
    let entry = table.get(format!("redis_lock.{name}").as_str())?;
    // SAFETY: ini_directives holds `zend_ini_entry` pointers owned by the table.
    let entry = unsafe { entry.ptr::<ext_php_rs::ffi::zend_ini_entry>()?.as_ref()? };
    // SAFETY: `value` is a zend_string owned by the entry, or null.
    let value = unsafe { entry.value.as_ref() }?;
    Some(value.as_bytes().to_vec())
}

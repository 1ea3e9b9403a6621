//! Links the extension against nothing at build time: PHP provides the Zend
//! symbols when it loads the `.so`. ext-php-rs's own build script finds PHP
//! (the `PHP` and `PHP_CONFIG` variables choose which); this one makes cargo
//! rebuild when they change, and refuses a thread-safe (ZTS) PHP.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PHP");
    println!("cargo:rerun-if-env-changed=PHP_CONFIG");
    // The request-scoped holds are per process: under a ZTS PHP one
    // thread's request end would release the locks of requests running in
    // other threads (issue 25 measured exactly that under Apache's threaded
    // MPM). An NTS build does not load into a ZTS PHP (PHP compares build
    // ids), so refusing here means no build runs wrongly.
    let php = std::env::var("PHP").unwrap_or_else(|_| "php".to_owned());
    let zts = Command::new(&php)
        .args(["-n", "-r", "echo PHP_ZTS;"])
        .output()
        .map(|out| out.stdout == b"1")
        .unwrap_or(false);
    if zts {
        eprintln!(
            "error: {php} is a thread-safe (ZTS) PHP; redis_lock supports NTS PHP only for now \
             (its per-request holds are per process). Build with an NTS PHP (the PHP and \
             PHP_CONFIG variables choose which)."
        );
        std::process::exit(1);
    }
}

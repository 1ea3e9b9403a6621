//! Links the extension against nothing at build time: PHP provides the Zend
//! symbols when it loads the `.so`. ext-php-rs's own build script finds PHP
//! (the `PHP` and `PHP_CONFIG` variables choose which); this one only makes
//! cargo rebuild when they change.
fn main() {
    println!("cargo:rerun-if-env-changed=PHP");
    println!("cargo:rerun-if-env-changed=PHP_CONFIG");
}

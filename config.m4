dnl config.m4 for the redis_lock extension: `phpize && ./configure && make &&
dnl make install`, the way PECL and PIE build extensions.
dnl
dnl redis_lock is written in Rust, so there is no C source and no
dnl PHP_NEW_EXTENSION: cargo builds the .so (the rule is in Makefile.frag) for
dnl the PHP this phpize belongs to, through ext-php-rs's build script, which
dnl reads the PHP and PHP_CONFIG environment variables. phpize's Makefile then
dnl installs modules/redis_lock.so into that PHP's extension directory with its
dnl own install-modules target (INSTALL_ROOT honoured).

AC_ARG_WITH([cargo],
  [AS_HELP_STRING([--with-cargo=PATH],
    [Path to cargo, Rust's build tool (default: $CARGO, else cargo on PATH)])],
  [AS_CASE([$withval], [yes|no|""], [], [CARGO=$withval])])

dnl The oldest Rust that builds the locked dependencies (uuid 1.29 and
dnl ext-php-rs 0.16 need 1.89 and the 2024 edition).
REDIS_LOCK_MIN_RUST=1.89

redis_lock_need_rust="redis_lock is written in Rust and is built with cargo (Rust $REDIS_LOCK_MIN_RUST or newer).
Install Rust with rustup (https://rustup.rs):
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
then put ~/.cargo/bin on PATH (or pass --with-cargo=/path/to/cargo, or set CARGO)
and run ./configure again. A distribution's cargo package works too if its Rust
is new enough (Debian: apt install cargo). Building also needs libclang
(Debian: apt install libclang-dev)."

AC_PATH_PROG([CARGO], [cargo], [no])
AS_VAR_IF([CARGO], [no],
  [AC_MSG_ERROR([cargo was not found on PATH.
$redis_lock_need_rust])])
AS_IF([test ! -x "$CARGO"],
  [AC_MSG_ERROR([cargo ($CARGO) is not an executable file.
$redis_lock_need_rust])])

AC_MSG_CHECKING([for the Rust version cargo uses])
dnl rustc next to cargo (rustup's proxies, or a distribution's /usr/bin), else on PATH.
redis_lock_cargo_dir=`dirname "$CARGO"`
if test -z "$RUSTC"; then
  if test -x "$redis_lock_cargo_dir/rustc"; then
    RUSTC="$redis_lock_cargo_dir/rustc"
  else
    RUSTC=rustc
  fi
fi
redis_lock_rust_version=`cd "$abs_srcdir" && "$RUSTC" --version 2>/dev/null | $SED -n 's/^rustc \([[0-9]][[0-9]]*\.[[0-9]][[0-9]]*\)\..*/\1/p'`
AS_IF([test -z "$redis_lock_rust_version"],
  [AC_MSG_RESULT([none])
   AC_MSG_ERROR([cargo is at $CARGO but rustc ($RUSTC) does not run: no Rust toolchain is installed for it (with rustup: rustup default stable).
$redis_lock_need_rust])])
AC_MSG_RESULT([$redis_lock_rust_version ($RUSTC)])
AS_VERSION_COMPARE([$redis_lock_rust_version], [$REDIS_LOCK_MIN_RUST],
  [AC_MSG_ERROR([Rust $redis_lock_rust_version is too old: redis_lock needs Rust $REDIS_LOCK_MIN_RUST or newer (with rustup: rustup update stable).
$redis_lock_need_rust])])

AC_MSG_CHECKING([whether PHP is non-thread-safe (NTS)])
AS_VAR_IF([PHP_THREAD_SAFETY], [yes],
  [AC_MSG_RESULT([no])
   AC_MSG_ERROR([this PHP is a thread-safe (ZTS) build; redis_lock supports NTS PHP only.])])
AC_MSG_RESULT([yes])

AC_MSG_CHECKING([for libclang (ext-php-rs generates its PHP bindings with bindgen)])
if test -n "$LIBCLANG_PATH"; then
  AC_MSG_RESULT([$LIBCLANG_PATH])
elif (/sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null) | grep 'libclang[[-.0-9]]*\.so' >/dev/null; then
  AC_MSG_RESULT([yes])
else
  AC_MSG_RESULT([not found])
  AC_MSG_WARN([libclang was not found; the cargo build will fail without it (Debian: apt install libclang-dev, or set LIBCLANG_PATH).])
fi

dnl ext-php-rs's build script takes the PHP binary and php-config from these;
dnl php-config as an absolute path, since it may have been given as a bare name.
AS_CASE([$PHP_CONFIG],
  [*/*], [REDIS_LOCK_PHP_CONFIG="$(cd "$(dirname "$PHP_CONFIG")" && pwd)/$(basename "$PHP_CONFIG")"],
  [AC_PATH_PROG([REDIS_LOCK_PHP_CONFIG], [$PHP_CONFIG], [$PHP_CONFIG])])
redis_lock_php_version=`$PHP_CONFIG --version 2>/dev/null | $SED -n 's/^\([[0-9]][[0-9]]*\.[[0-9]][[0-9]]*\).*/\1/p'`

dnl One cargo target directory per PHP version, so that building for another
dnl PHP does not rebuild (or overwrite) this one; a CARGO_TARGET_DIR set by the
dnl caller wins.
AC_MSG_CHECKING([for the cargo target directory])
AS_IF([test -n "$CARGO_TARGET_DIR"],
  [REDIS_LOCK_TARGET_DIR=$CARGO_TARGET_DIR],
  [REDIS_LOCK_TARGET_DIR="$abs_srcdir/target/phpize-$redis_lock_php_version"])
AC_MSG_RESULT([$REDIS_LOCK_TARGET_DIR])

dnl What the .so is built from: make reruns cargo only when one of these (or the
dnl configured Makefile) changes, so `sudo make install` after `make` does not
dnl run cargo as root.
REDIS_LOCK_SOURCES=`cd "$abs_srcdir" && find Cargo.toml Cargo.lock build.rs src core/Cargo.toml core/src -type f 2>/dev/null | $SED "s#^#$abs_srcdir/#" | tr '\n' ' '`

dnl No C sources: the module phpize's Makefile builds and installs is the
dnl cargo-built .so.
PHP_MODULES='$(phplibdir)/redis_lock.so'
PHP_ADD_BUILD_DIR([modules])
PHP_ADD_MAKEFILE_FRAGMENT([$abs_srcdir/Makefile.frag], [$abs_srcdir], [$abs_builddir])

PHP_SUBST([CARGO])
PHP_SUBST([REDIS_LOCK_PHP_CONFIG])
PHP_SUBST([REDIS_LOCK_TARGET_DIR])
PHP_SUBST([REDIS_LOCK_SOURCES])

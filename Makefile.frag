# Appended to phpize's generated Makefile by config.m4.
#
# cargo builds the extension for the PHP this build was configured for
# (ext-php-rs reads PHP and PHP_CONFIG), and the result becomes
# modules/redis_lock.so, the one module phpize's install-modules target
# installs into $(EXTENSION_DIR). The rule reruns only when a Rust source,
# a Cargo manifest, Cargo.lock or the configured Makefile is newer than the
# module, so `sudo make install` after `make` does not run cargo as root.
$(phplibdir)/redis_lock.so: $(REDIS_LOCK_SOURCES) $(top_builddir)/Makefile
	@echo "Building redis_lock with cargo for $(PHP_EXECUTABLE) ($(REDIS_LOCK_PHP_CONFIG)) in $(REDIS_LOCK_TARGET_DIR)"
	cd "$(top_srcdir)" && PHP="$(PHP_EXECUTABLE)" PHP_CONFIG="$(REDIS_LOCK_PHP_CONFIG)" CARGO_TARGET_DIR="$(REDIS_LOCK_TARGET_DIR)" "$(CARGO)" build --release --lib
	@test -d "$(phplibdir)" || mkdir -p "$(phplibdir)"
	@# A dot file, so install-modules (modules/*) never picks up a half copy.
	cp "$(REDIS_LOCK_TARGET_DIR)/release/libredis_lock.so" "$(phplibdir)/.redis_lock.so.tmp"
	mv -f "$(phplibdir)/.redis_lock.so.tmp" $@

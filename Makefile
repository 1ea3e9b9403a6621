# The two commands of the README:
#   make demo   builds the extension, starts a local Redis on a free port and
#               shows forked PHP workers losing updates without a lock and not with one
#   make test   builds and runs every test (cargo test, stub check, PHPUnit)
# Both install what they need first (scripts/install-deps.sh).

SO      := $(CURDIR)/target/release/libredis_lock.so
# A debug build: cargo-php reads the description ext-php-rs exports only from
# debug builds, and the PHPUnit suite uses it to inject panics.
DEBUG_SO := $(CURDIR)/target/debug/libredis_lock.so
STATE   := $(CURDIR)/.build
STUBS   := stubs/redis_lock.stubs.php

.PHONY: deps build debug-build demo test soak soak-short bench wordpress test-rust test-php stubs stubs-check clean

deps:
	./scripts/install-deps.sh

build: deps
	cargo build --release

demo: build
	./scripts/demo.sh

test: build debug-build test-rust stubs-check test-php soak-short wordpress

debug-build:
	cargo build --features panic-injection

test-rust:
	cargo test --release --workspace --exclude redis_lock

test-php:
	REDIS_LOCK_SO=$(SO) REDIS_LOCK_DEBUG_SO=$(DEBUG_SO) php -d extension=$(SO) /usr/bin/phpunit -c php-tests/phpunit.xml

# Benchmarks against phpredis, Laravel, Symfony Lock and predis (BENCHMARKS.md).
bench: build
	python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib
	./bench/run.sh

# The WordPress proof: Debian's wordpress, MariaDB, PHP-FPM + nginx, 2000 requests from 16 clients.
wordpress: build
	./wordpress/tests/run.sh 2000 16

# Faults, leaks and load: the long run, and the shortened form `make test` runs.
soak: build
	./soak/run.sh

soak-short:
	./soak/run.sh --short

stubs: build debug-build
	mkdir -p $(STATE)
	cargo php stubs --stdout $(DEBUG_SO) > $(STATE)/raw.stubs.php
	php -d extension=$(DEBUG_SO) scripts/stubs.php $(STATE)/raw.stubs.php > $(STUBS)

stubs-check:
	mkdir -p $(STATE)
	cargo php stubs --stdout $(DEBUG_SO) > $(STATE)/raw.stubs.php
	php -d extension=$(DEBUG_SO) scripts/stubs.php $(STATE)/raw.stubs.php > $(STATE)/stubs.php
	@diff -u $(STUBS) $(STATE)/stubs.php || { echo "stubs/ is out of date: run 'make stubs'"; exit 1; }

clean:
	cargo clean
	rm -rf $(STATE)

# sqmail: build, test, run, install.
#
#   make run                 a private instance under ./run, on loopback
#   make test                everything: lint, unit, integration and interop tests
#   make setup QMAILHOME=DIR [SINGLEUSER=1]   install an instance (as root)
#   make bench               benchmarks against peers measured in the same run

QMAILHOME ?= /var/qmail
CARGO ?= cargo
RELEASE = target/release
RUNDIR = $(CURDIR)/run

# Debian packages the tests drive as independent peers.
TEST_PACKAGES = tinycdb freecdb ucspi-tcp daemontools mandoc util-linux iproute2 openssl python3 swaks libnet-ssleay-perl libio-socket-ssl-perl dnsmasq-base libcrypt-dev dovecot-core postfix unbound ldnsutils
BENCH_PACKAGES = hyperfine ucspi-tcp postfix openssl

.PHONY: all build test check deps lint man-lint fuzz-smoke fuzz setup run bench clean

all: build

# Programs started once per connection or per message are linked statically (static-pie,
# so ASLR stays): starting them is most of what they cost, and a static start skips ld.so's
# loading and relocation. The only accounts they look up are qmail's own and SSL_USER,
# which glibc's built-in files module finds in /etc/passwd; an account known only to
# another NSS module would need that module from the glibc they were built with. The rest
# stay dynamic: they read the user database through whatever nsswitch.conf names.
STATIC = tcpserver sslserver sslengine rblsmtpd qmail-smtpd qmail-queue qmail-remote qmail-local
HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')

build:
	$(CARGO) build --release --locked --workspace
	RUSTFLAGS='-C target-feature=+crt-static' $(CARGO) build --release --locked --workspace \
	  --target $(HOST) $(addprefix --bin ,$(STATIC))
	for p in $(STATIC); do cp --remove-destination target/$(HOST)/release/$$p $(RELEASE)/$$p; done

deps:
	@apt-cache show ucspi-tcp-ipv6 >/dev/null 2>&1 || apt-get update >/dev/null
	@missing=""; for p in $(TEST_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	  { apt-get update >/dev/null && apt-get install -y --no-install-recommends $$missing; }; \
	fi

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	@! grep -rln --include='*.rs' -E '\bunsafe\b' lib bin ucspi | grep -v '^lib/sys/' \
	  || { echo "unsafe outside lib/sys"; exit 1; }

man-lint:
	@for f in doc/*.[1-9]; do mandoc -Tlint -W warning "$$f" || exit 1; done
	@for f in bin/*.rs ucspi/bin/*.rs; do [ -e "$$f" ] || continue; n=$$(basename $$f .rs); \
	  ls doc/$$n.[1-9] >/dev/null 2>&1 || { echo "no man page for $$n"; exit 1; }; done

# The demo's test runs on the release build (SQMAIL_PROGRAMS), so the statically linked
# programs carry a message through the whole chain; every other test uses the debug build.
test: deps lint man-lint fuzz-smoke build
	SQMAIL_PROGRAMS=$(CURDIR)/$(RELEASE) $(CARGO) test --all --locked

# The fuzz targets, briefly (FUZZ_SECS each); `make fuzz FUZZ_SECS=600` for a real run.
# cargo-fuzz needs nightly features: a nightly toolchain if there is one, else stable
# with RUSTC_BOOTSTRAP.
FUZZ_SECS ?= 15
FUZZ_TARGETS = envelope address files local reports policy smtpreply tlsa smtpd_session smtpd_path smtpd_data
fuzz-smoke fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then tc=+nightly; boot=; \
	 else tc=; boot=RUSTC_BOOTSTRAP=1; fi; \
	 for t in $(FUZZ_TARGETS); do mkdir -p fuzz/corpus/$$t; \
	   if env $$boot $(CARGO) $$tc fuzz run --fuzz-dir fuzz -O $$t fuzz/corpus/$$t fuzz/seeds/$$t -- \
	        -max_total_time=$(FUZZ_SECS) -max_len=65536 >fuzz/corpus/$$t.log 2>&1; \
	   then echo "fuzz $$t: $$(grep '^Done' fuzz/corpus/$$t.log)"; \
	   else tail -40 fuzz/corpus/$$t.log; exit 1; fi; done

setup: build
	$(RELEASE)/sqmail-setup $(if $(SINGLEUSER),-s) -p $(RELEASE) $(QMAILHOME)

# The embedded default: a private single-user instance under ./run on loopback, made and
# started by sbin/sqmail-demo (see doc/sqmail-demo.8): qmail-send, SMTP with STARTTLS,
# SMTPS, submission with STARTTLS and AUTH, logs on the terminal; a welcome message goes
# in by submission, out through qmail-remote and back in to the Maildir. Ctrl-C stops it.
SMTP_PORT ?= 2525
SMTPS_PORT ?= 4465
SUBMISSION_PORT ?= 5587
run: build
	@SMTP_PORT=$(SMTP_PORT) SMTPS_PORT=$(SMTPS_PORT) SUBMISSION_PORT=$(SUBMISSION_PORT) \
	  sh sbin/sqmail-demo $(RELEASE) $(RUNDIR)

bench: build
	@dpkg -s $(BENCH_PACKAGES) >/dev/null 2>&1 || { echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y $(BENCH_PACKAGES) >/dev/null; }
	python3 bench/inject.py $(RELEASE)
	python3 bench/local.py $(RELEASE)
	python3 bench/smtpd.py $(RELEASE)
	python3 bench/remote.py $(RELEASE)
	python3 bench/sslserver.py $(RELEASE)
	python3 bench/tcpserver.py $(RELEASE)

clean:
	$(CARGO) clean
	rm -rf $(RUNDIR)

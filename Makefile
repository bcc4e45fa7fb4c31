# sxctl: `make demo` runs a simulated cascade, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done
# Another Unix-port build: make test MICROPYTHON=/path/to/micropython
MICROPYTHON ?=
export MICROPYTHON

.PHONY: setup tools test demo bench faults proto clean

setup: $(STAMP) tools

# Debian's mbpoll: the Modbus client the gateway tests check the Modbus face with, independent of
# pymodbus; Debian's chromium and chromium-driver: the browser the web view tests run in. Installed where missing when run as root; otherwise the one command to run is printed.
tools:
	@command -v mbpoll >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q mbpoll >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q mbpoll >/dev/null; }; \
	  else echo "mbpoll is missing (the Modbus tests need it): run  sudo apt-get install mbpoll"; fi; }
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	  else echo "chromium is missing (the web view tests need it): run  sudo apt-get install chromium chromium-driver"; fi; }
	@command -v mosquitto >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q mosquitto postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q mosquitto postgresql >/dev/null; }; \
	  else echo "mosquitto or postgresql is missing (the historian tests need them): run  sudo apt-get install mosquitto postgresql"; fi; }

# Reinstalls only when the pinned requirements or the package metadata change. The pinned
# wheels are also kept in .venv/wheels: the packaging test installs the built sxctl wheel
# from them into a fresh venv, without an index.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	rm -rf $(VENV)/wheels
	$(BIN)/python -m pip download -q --disable-pip-version-check --only-binary=:all: -d $(VENV)/wheels -r requirements.txt
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/sxctl demo

bench: setup
	$(BIN)/python -m sxctl.bench

# The reliability and security campaign; writes build/faults.json (a short form runs in make test).
faults: setup
	$(BIN)/python -m sxctl.faults

# Regenerate the firmware codec and protocol/README.md from the declarations.
proto: setup
	$(BIN)/python -m sxproto.codegen

clean:
	rm -rf build

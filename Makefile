# Kubernetes Networking Labs: `make lab` to learn, `make test` to verify.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LABKIT := $(VENV)/bin/labkit
LAB ?= netlab
CNI ?= calico
# The lab nbval runs the lessons on (taken down afterwards, with the labs lessons 04 and 05 bring
# up beside it as $(NBVAL_LAB)-flannel and $(NBVAL_LAB)-cilium; a learner's lab is left alone).
NBVAL_LAB ?= nbval
# The notebooks nbval runs (the Kind workflow's Flannel job leaves out those that need policies).
NBVAL_LESSONS ?= lessons
BACKEND ?= auto
# Debian/Ubuntu packages the sandbox backend drives (ip, iptables, ipset for Calico's policy sets,
# bwrap to confine pod and node commands, tcpdump, dig, ping, conntrack, ps), Graphviz's dot (the
# topology and packet-path pictures), and the browser test's chromium (Playwright drives it;
# Playwright's own browser download is never used).
APT_PACKAGES := iproute2 iptables ipset bubblewrap tcpdump dnsutils iputils-ping conntrack procps openssl graphviz chromium
SYSTEM_TOOLS := ip iptables iptables-save iptables-restore ipset bwrap tcpdump dig ping conntrack openssl dot chromium

.PHONY: setup system-tools lab test lint format unit sandbox-tests kind-tests browser-tests nbval nbval-cilium student bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

## setup: create .venv with everything, and (as root on Debian/Ubuntu) the sandbox's system tools and chromium
setup: $(VENV)/.installed system-tools

system-tools:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "setup: installing$$missing ($(APT_PACKAGES))"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	else \
	  echo "setup: missing$$missing; the sandbox backend and the browser test need them. Run 'sudo make setup' on Debian/Ubuntu, or install: $(APT_PACKAGES)."; \
	fi

## lab: set up, bring a lab up (Kind when Docker answers, else the sandbox) or attach to the one running under LAB, open JupyterLab on lessons/
lab: setup
	$(LABKIT) up --backend $(BACKEND) --cni $(CNI) --name $(LAB)
	@# The sandbox needs root, and JupyterLab refuses root unless told it is deliberate. Its
	@# terminals open `labkit shell`, where `kubectl` means `labkit kubectl --name $(LAB)`.
	LABKIT_LAB=$(LAB) $(VENV)/bin/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root) \
	  --ServerApp.terminado_settings="{'shell_command': ['$(abspath $(LABKIT))', 'shell', '--name', '$(LAB)']}" \
	  lessons/

## test: set up, lint, then every tier this machine can run (unit; sandbox as root; Kind where Docker answers; lessons in a browser; notebooks)
test: setup lint
	$(PY) -m pytest tests -q
	@$(MAKE) --no-print-directory nbval
	@$(MAKE) --no-print-directory nbval-cilium

## lint: formatting, lint rules, types and layers (configured in pyproject.toml and .importlinter)
lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## format: rewrite the code in the house style and apply ruff's safe fixes
format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

unit: setup
	$(PY) -m pytest tests/unit -q

sandbox-tests: setup
	$(PY) -m pytest tests/sandbox -q

kind-tests: setup
	$(PY) -m pytest -m kind tests/kind -q

## browser-tests: every lesson run in JupyterLab in headless chromium; screenshots in build/screenshots/
browser-tests: setup
	$(PY) -m pytest tests/browser -q

## nbval: run the lesson sources on lab $(NBVAL_LAB) with a fresh progress file, compare marked outputs
nbval: setup
	@if ls lessons/*.ipynb >/dev/null 2>&1; then \
	  progress=$$(mktemp --suffix=.jsonl); start=$$(date +%s); \
	  LABKIT_LAB=$(NBVAL_LAB) LABKIT_PROGRESS=$$progress $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with lessons/sanitize.cfg $(NBVAL_LESSONS) -q -p no:cacheprovider; \
	  status=$$?; for lab in $(NBVAL_LAB) $(NBVAL_LAB)-flannel $(NBVAL_LAB)-cilium; do $(LABKIT) down --name $$lab >/dev/null; done; \
	  rm -f $$progress; \
	  echo "nbval: $$(( $$(date +%s) - start )) s wall time"; exit $$status; \
	else echo "nbval: no lessons yet, nothing to validate"; fi

## nbval-cilium: the same lessons on a Cilium lab $(NBVAL_LAB)ci (kube-proxy replaced), brought up first and taken down after; tests/nbval_cilium.py lists the cells it skips, with reasons
nbval-cilium: setup
	@progress=$$(mktemp --suffix=.jsonl); start=$$(date +%s); lab=$(NBVAL_LAB)ci; \
	  $(LABKIT) up --backend $(BACKEND) --cni cilium --name $$lab >/dev/null && \
	  LABKIT_LAB=$$lab LABKIT_PROGRESS=$$progress $(PY) -m pytest -p tests.nbval_cilium --nbval-lax --nbval-current-env --nbval-sanitize-with lessons/sanitize.cfg $(NBVAL_LESSONS) -q -rs -p no:cacheprovider; \
	  status=$$?; for name in $$lab $$lab-flannel $$lab-cilium; do $(LABKIT) down --name $$name >/dev/null; done; \
	  rm -f $$progress; \
	  echo "nbval-cilium: $$(( $$(date +%s) - start )) s wall time"; exit $$status

## student: learner copies of the lessons in build/student/ (solutions and outputs removed)
student: setup
	$(PY) -m labkit.student lessons build/student

## bench: print speed and memory figures (targets in the README)
bench: setup
	$(PY) bench/model.py
	$(PY) bench/sandbox.py
	$(PY) bench/checks.py

## clean: remove the default lab and the virtualenv
clean:
	-[ -x $(LABKIT) ] && $(LABKIT) down --name $(LAB)
	rm -rf $(VENV)

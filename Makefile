# Set-up and entry points. `make up` and `make test` do all set-up themselves on a fresh Debian
# machine as root (apt packages, a venv, pip install), then run.

VENV        ?= .venv
PY          := $(VENV)/bin/python
DATA_DIR    ?= /var/lib/pinnace
PORT        ?= 6443
KUBECONFIG_OUT := $(DATA_DIR)/admin.kubeconfig
# system packages the code and tests use (kubectl and the docker CLI come with the machine image):
# etcd for the etcd datastore; the OCI runtimes, conmon, busybox and the registry/image tools for the engine
APT_PACKAGES := python3-venv etcd-server crun runc conmon busybox-static skopeo umoci docker-registry \
	containernetworking-plugins nftables iproute2 util-linux
# peers the benchmarks compare against
BENCH_PACKAGES := podman

.PHONY: setup system-deps up down demo test lint bench proto clean

setup: system-deps $(VENV)/.installed

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

up: setup
	$(PY) -m cli.main up --data-dir $(DATA_DIR) --port $(PORT)
	@$(MAKE) --no-print-directory demo

# apply the demo, wait for its rollout, say how to reach it (kubectl uses the context `up` merged)
demo:
	kubectl --kubeconfig $(KUBECONFIG_OUT) apply -f manifests/demo/
	kubectl --kubeconfig $(KUBECONFIG_OUT) -n demo rollout status deployment/web --timeout=120s
	kubectl --kubeconfig $(KUBECONFIG_OUT) -n demo get pods -o wide
	@echo; echo "Cluster up (kubectl context 'pinnace'). Reach the demo at a pod IP from the list above:"; \
	ip=$$(kubectl --kubeconfig $(KUBECONFIG_OUT) -n demo get pods -o jsonpath='{.items[0].status.podIP}'); \
	echo "  curl http://$$ip:8080/"; echo "Status: $(PY) -m cli.main status; stop and clean up: make down"

down: setup
	$(PY) -m cli.main down --data-dir $(DATA_DIR)

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest -q

bench: setup
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="$(BENCH_PACKAGES)"
	$(PY) -m bench.api
	$(PY) -m bench.images
	$(PY) -m bench.engine
	$(PY) -m bench.cni
	$(PY) -m bench.scheduler
	$(PY) -m bench.controllers
	$(PY) -m bench.pods
	$(PY) -m bench.services
	$(PY) -m bench.dns
	$(PY) -m bench.cluster

# regenerate the etcd v3 gRPC stubs from apiserver/storage/etcd_proto/rpc.proto
proto: setup
	apiserver/storage/etcd_proto/regen.sh $(PY)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

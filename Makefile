# Thin wrapper over CMake: `make demo` and `make test` work on a fresh Debian 12 machine.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Extra CMake switches for the main build, e.g. CMAKE_ARGS=-DRLM_WERROR=ON (what CI uses).
CMAKE_ARGS ?=
DEBIAN_PACKAGES = build-essential cmake pkg-config python3 libjson-c-dev libcurl4-openssl-dev \
	libcmocka-dev clang-format protobuf-c-compiler libprotobuf-c-dev protobuf-compiler \
	python3-grpcio python3-protobuf openssl chromium \
	libmicrohttpd-dev python3-pip python3-setuptools python3-wheel
FUZZ_PACKAGES = clang libclang-rt-14-dev

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30

.PHONY: all bench-results deps node-deps install-packages build test test-load test-asan release fuzz demo \
	demo-eval bench format format-check install clean

all: build

# Installs what is missing (needs root or sudo); a no-op when everything is there.
deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEBIAN_PACKAGES)"
	@$(MAKE) --no-print-directory node-deps

# The real MCP clients the tests drive `rlm mcp` with (tests/mcp/package-lock.json pins every
# version). Node 20+ with npm is expected on the machine; without it those tests skip.
node-deps:
	@if [ tests/mcp/node_modules/.package-lock.json -nt tests/mcp/package-lock.json ]; then \
		:; \
	elif command -v npm >/dev/null 2>&1; then \
		cd tests/mcp && npm ci --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm not found: the Node MCP client tests will be skipped"; \
	fi

install-packages:
	@missing=""; for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The suite again with four times as many jobs as cores: what load does to timing.
test-load: build
	cd $(BUILD) && ctest --output-on-failure -j $$(( $(JOBS) * 4 ))

# A packager's Release build (no tests): must compile cleanly with the distribution's gcc.
release: deps
	cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DRLM_BUILD_TESTS=OFF $(CMAKE_ARGS)
	cmake --build build-release -j $(JOBS)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer (less what runs no C of
# ours, the install test, whose consumer is not built with the sanitizers, and the Python
# suites: an uninstrumented python3 cannot load an ASan librlm).
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRLM_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) -E 'driver_unittest|header_|install_consumer|python_'

# Each parser's libFuzzer target for FUZZ_SECONDS, from the seed corpus in tests/fuzz/.
fuzz: deps
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(FUZZ_PACKAGES)"
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRLM_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_decoder fuzz_config fuzz_grpc
	for t in decoder config grpc; do \
		mkdir -p $(FUZZ_BUILD)/corpus-$$t && \
		$(FUZZ_BUILD)/tests/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
			$(FUZZ_BUILD)/corpus-$$t tests/fuzz/seeds-$$t || exit 1; \
	done

demo: deps $(BUILD)/CMakeCache.txt
	@echo "building (log in $(BUILD)/build.log) ..."
	@cmake --build $(BUILD) -j $(JOBS) > $(BUILD)/build.log 2>&1 || { tail -40 $(BUILD)/build.log; exit 1; }
	@sh examples/demo.sh $(BUILD)

# rlm eval on 20 generated tasks (local backend, replay LLM), then the report.
demo-eval: deps $(BUILD)/CMakeCache.txt
	@echo "building (log in $(BUILD)/build.log) ..."
	@cmake --build $(BUILD) -j $(JOBS) > $(BUILD)/build.log 2>&1 || { tail -40 $(BUILD)/build.log; exit 1; }
	@sh examples/demo_eval.sh $(BUILD)

# Every bench appends its figures to $(BENCH_OUT)/figures.jsonl (bench/bench_json.h), then
# bench/report.py prints each ratio against its target and writes report.txt and report.svg
# beside it. A missed target is printed (NOT met), not a failure; a bench that exits with an
# error is named in the report and fails the run once every bench has run.
BENCH_OUT = $(BUILD)/bench
bench: build
	@mkdir -p $(BENCH_OUT); : > $(BENCH_OUT)/figures.jsonl; \
	export RLM_BENCH_JSON=$(abspath $(BENCH_OUT))/figures.jsonl; failed=; \
	run() { name=$$1; shift; echo "+ $$*"; "$$@" || failed="$$failed --failed $$name"; }; \
	run bench_local $(BUILD)/bench/bench_local; \
	run bench_cli_start $(BUILD)/bench/bench_cli_start; \
	run bench_loop $(BUILD)/bench/bench_loop; \
	run bench_llm $(BUILD)/bench/bench_llm; \
	run bench_daytona env XDG_DATA_HOME=$(BUILD)/bench-data $(BUILD)/bench/bench_daytona; \
	run bench_modal env XDG_DATA_HOME=$(BUILD)/bench-data $(BUILD)/bench/bench_modal --execs 200 --concurrent 32; \
	run bench_python env RLM_LIBRARY=$(BUILD)/lib/librlm.so.0 /usr/bin/python3 bench/bench_python.py; \
	run bench_eval env XDG_DATA_HOME=$(BUILD)/bench-data python3 bench/bench_eval.py $(BUILD) --tasks 256 --concurrency 64; \
	run bench_mcp env XDG_DATA_HOME=$(BUILD)/bench-data $(BUILD)/bench/bench_mcp; \
	run bench_scale env XDG_DATA_HOME=$(BUILD)/bench-data $(BUILD)/bench/bench_scale; \
	echo; python3 bench/report.py $$RLM_BENCH_JSON --text $(BENCH_OUT)/report.txt \
	  --svg $(BENCH_OUT)/report.svg $$failed || exit 2; \
	test -z "$$failed"

# The committed copy the README embeds (bench/results/bench.svg): `make bench` first, on a
# quiet machine.
bench-results:
	mkdir -p bench/results
	cp $(BENCH_OUT)/report.svg bench/results/bench.svg
	cp $(BENCH_OUT)/report.txt bench/results/bench.txt

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@out=$$(clang-format --dry-run $$(git ls-files '*.c' '*.h') 2>&1); \
	if [ -n "$$out" ]; then echo "$$out" | head -40; echo "run 'make format'"; exit 1; fi; \
	echo "format: ok"

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-release

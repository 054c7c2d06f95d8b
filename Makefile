# Myna - the two commands are `make run` and `make check` (see README.md).
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
BUILD     ?= build
FUZZ_SECONDS ?= 60
PUBLIC    ?= 127.0.0.1:8080
ADMIN     ?= 127.0.0.1:8081

.PHONY: all deps build run check test fuzz bench clean

all: build

deps:
	@scripts/deps.sh

# Release build of the myna binary.
build: deps
	@cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release -DMYNA_TESTS=OFF >/dev/null
	@cmake --build $(BUILD)/release -j $(JOBS)

# Starts Myna in the foreground with the demo instance of examples/.
run: build
	@scripts/run-demo.sh $(BUILD)/release/myna $(PUBLIC) $(ADMIN)

# Every test: warnings as errors, the fuzzers for a bounded time, the release
# build (the allocator and optimizer of `make run`) through the end-to-end
# tests, then unit + end-to-end under ASan/UBSan.
check: deps
	@cmake -S . -B $(BUILD)/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Fuzz \
		-DMYNA_WERROR=ON -DMYNA_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@cmake --build $(BUILD)/fuzz -j $(JOBS) --target fuzzers
	@cd $(BUILD)/fuzz && ctest --output-on-failure -L fuzz -j $(JOBS)
	@cmake -S . -B $(BUILD)/check-release -DCMAKE_BUILD_TYPE=Release -DMYNA_WERROR=ON \
		-DMYNA_TESTS=ON -DMYNA_BENCH=ON >/dev/null
	@cmake --build $(BUILD)/check-release -j $(JOBS)
	@cd $(BUILD)/check-release && ctest --output-on-failure -L e2e -j $(JOBS)
	@cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Asan -DMYNA_WERROR=ON >/dev/null
	@cmake --build $(BUILD)/asan -j $(JOBS)
	@cd $(BUILD)/asan && ctest --output-on-failure -j $(JOBS)

# Unit and end-to-end tests only (no fuzzing), in the ASan build.
test: deps
	@cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Asan -DMYNA_WERROR=ON >/dev/null
	@cmake --build $(BUILD)/asan -j $(JOBS)
	@cd $(BUILD)/asan && ctest --output-on-failure -j $(JOBS)

fuzz: deps
	@cmake -S . -B $(BUILD)/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Fuzz \
		-DMYNA_WERROR=ON -DMYNA_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@cmake --build $(BUILD)/fuzz -j $(JOBS) --target fuzzers
	@cd $(BUILD)/fuzz && ctest --output-on-failure -L fuzz -j $(JOBS)

# Benchmarks (not tests): print Myna's figures beside a baseline measured in the same run.
bench:
	@scripts/deps.sh --bench
	@cmake -S . -B $(BUILD)/bench -DCMAKE_BUILD_TYPE=Release -DMYNA_TESTS=OFF -DMYNA_BENCH=ON >/dev/null
	@cmake --build $(BUILD)/bench -j $(JOBS)
	@bench/run.sh $(BUILD)/bench

clean:
	rm -rf $(BUILD)

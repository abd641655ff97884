# A thin wrapper over CMake: the two commands of the README's quick start, and a few more.
BUILD ?= build
MAKEFLAGS += --no-print-directory
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps test-deps build test test-asan demo bench format clean

all: build

deps:
	@sh scripts/deps.sh build

test-deps:
	@sh scripts/deps.sh test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The whole suite: the recorder's tests, then the same under ASan/UBSan (label "asan").
test: test-deps build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE asan
	@$(MAKE) --no-print-directory test-asan

test-asan: test-deps
	@cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DCS_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	@cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) -L asan

demo: test-deps build
	@sh scripts/demo.sh $(BUILD)

bench: build
	@sh scripts/deps.sh bench
	@sh bench/run.sh $(BUILD)
	@sh bench/python.sh $(BUILD)
	@sh bench/heap.sh $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan

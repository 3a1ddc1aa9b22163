# The README's two commands: `make run` (the main job on the embedded default) and `make test` (every test).
# Both install missing Debian packages first, then build.
SHELL := /bin/bash
SWIFT_FLAGS ?=
RELEASE := .build/release
# mpirun as root (containers, CI) needs both variables.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
# SwiftPM reads the system libraries' .pc files itself; on some machines of this kind its default search path misses
# Debian's multiarch folder (hdf5.h then "not found"), so pkg-config's own path is passed on when none is set.
export PKG_CONFIG_PATH ?= $(shell pkg-config --variable pc_path pkg-config 2>/dev/null)

.PHONY: all deps build test run bench clean install

all: build

deps:
	@scripts/install-deps.sh

build: deps
	swift build -c release $(SWIFT_FLAGS)

# Unit tests (XCTest, release build: the numeric tests run on optimised code), then the multi-rank tests on 2 and
# 4 ranks under mpirun, then the process-level tests of the real binary (scripts/run-tests.sh, scripts/test-process.sh).
test: deps
	SWIFT_FLAGS="$(SWIFT_FLAGS)" scripts/run-tests.sh

# The embedded default: AdaptIR on the bundled small backbone, adapted to LR4&Noise30 on the photo corpus (fetched
# once by datasets/fetch-photos.sh into datasets/photos, checked by SHA-256) by two ranks, with the PSNR/SSIM table
# of the corpus's test split before and after.
run: build
	datasets/fetch-photos.sh --if-missing
	mpirun -n 2 --bind-to none -x OPENBLAS_NUM_THREADS=1 $(RELEASE)/adaptir-dist train

# `make install PREFIX=/opt/adaptir`: the binary to PREFIX/bin, the bundled backbone and sample photos to
# PREFIX/share/adaptir-dist/datasets, where the binary finds them from any directory (scripts/install.sh).
PREFIX ?= /usr/local
install: build
	scripts/install.sh "$(PREFIX)" $(RELEASE)/adaptir-dist

bench: build
	$(RELEASE)/adaptir-dist bench ops --threads 1
	$(RELEASE)/adaptir-dist bench ops --threads 2

clean:
	rm -rf .build

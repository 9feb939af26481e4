GO ?= go
export CGO_ENABLED := 0
# VERSION is stamped into the binaries (obmd -version, obmd_build_info).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X obmd/internal/buildinfo.version=$(VERSION) -X obmd/internal/buildinfo.revision=$(REVISION)

.PHONY: build test demo demo-cluster bench vet fmt clean web

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/obmd ./cmd/obmd
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/fakebmc ./cmd/fakebmc
	@for b in bin/obmd bin/fakebmc; do \
		if file $$b | grep -q 'dynamically linked'; then echo "$$b is not static" >&2; exit 1; fi; \
	done

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 9m ./...

demo:
	./scripts/demo.sh

demo-cluster:
	./scripts/demo-cluster.sh

bench:
	$(GO) run ./cmd/obmdbench -runs 5 -results bench/RESULTS.md -command "make bench (go run ./cmd/obmdbench -runs 5 -results bench/RESULTS.md)"

# web refreshes the console page's embedded xterm.js (api/web/vendor) from
# npm, as api/web/package-lock.json pins it, and rewrites the checksum
# manifest a test checks. Only needed when the lock file changes: the build
# and the tests use the committed files and need neither npm nor a network.
web:
	cd api/web && npm ci --ignore-scripts --no-audit --no-fund && node refresh.mjs

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

GO ?= go
export CGO_ENABLED := 0

.PHONY: build test demo bench vet fmt clean web

build:
	$(GO) build -trimpath -ldflags '-s -w' -o bin/obmd ./cmd/obmd
	$(GO) build -trimpath -ldflags '-s -w' -o bin/fakebmc ./cmd/fakebmc
	@for b in bin/obmd bin/fakebmc; do \
		if file $$b | grep -q 'dynamically linked'; then echo "$$b is not static" >&2; exit 1; fi; \
	done

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 9m ./...

demo:
	./scripts/demo.sh

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

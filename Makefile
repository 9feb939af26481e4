GO ?= go
export CGO_ENABLED := 0

.PHONY: build test demo bench vet fmt clean

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

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# obmd in a minimal image: the static binary `make build` writes, on
# distroless/static (CA certificates and tzdata, no shell, no package
# manager), running as the image's non-root user.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) -t obmd .
#
# README "Running obmd" shows how to run it (secrets as *_FILE mounts).

FROM golang:1.26-bookworm AS build
# `make build` checks with file(1) that the binaries are static.
RUN apt-get update && apt-get install -y --no-install-recommends file && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=
ARG REVISION=
# .git is not in the build context (.dockerignore): the version and revision
# come from the build arguments, and the toolchain must not look for VCS data.
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
RUN make build VERSION="${VERSION}" REVISION="${REVISION}" \
	&& install -d -m 0700 /out/var/lib/obmd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/obmd /usr/local/bin/obmd
# The database and console logs live on a volume owned by the non-root user.
COPY --from=build --chown=nonroot:nonroot /out/var/lib/obmd /var/lib/obmd
USER nonroot:nonroot
ENV LISTEN_ADDR=0.0.0.0:8443 \
	DB_PATH=/var/lib/obmd/db \
	CONSOLE_LOG_DIR=/var/lib/obmd/console \
	LOG_FORMAT=json
VOLUME ["/var/lib/obmd"]
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/obmd"]

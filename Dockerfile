# syntax=docker/dockerfile:1.7
#
# Switchboard gateway image.
#
#   docker build -t switchboard:local .
#   docker run --rm -p 3000:3000 -e SWITCHBOARD_REDIS_URL=redis://host:6379/0 switchboard:local
#
# Stage 1 builds a static binary (CGO off, so it runs on distroless/static);
# stage 2 is distroless: no shell, no package manager, CA certificates and
# tzdata included, runs as the unprivileged uid 65532. See deploy/README.md.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS=-mod=readonly

# Dependencies first: this layer is reused until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .

# VERSION is stamped into main.version when cmd/switchboard declares it
# (the linker ignores -X for a variable that does not exist).
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/switchboard ./cmd/switchboard

FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/switchboard /usr/local/bin/switchboard

# Numeric uid/gid so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532

ENV SWITCHBOARD_ADDR=:3000
EXPOSE 3000

# There is no shell or curl in distroless: the binary checks itself.
# `switchboard healthcheck` GETs http://127.0.0.1:<port of SWITCHBOARD_ADDR>/healthz
# and exits 0 on 200, 1 otherwise. Liveness only: readiness (/readyz) is the
# load balancer's business, and a container must not be restarted because
# Redis is down.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/switchboard", "healthcheck"]

# SIGTERM starts the drain (readiness false, transports closed over the first
# part of SWITCHBOARD_DRAIN_TIMEOUT, exit within it). Give the container more
# than the drain timeout to stop: docker stop -t 25 / stop_grace_period: 25s.
STOPSIGNAL SIGTERM

# No arguments: serve. Other subcommands work the same way, e.g.
#   docker run --rm -e SWITCHBOARD_JWT_SECRET=... switchboard:local token --sub alice
ENTRYPOINT ["/usr/local/bin/switchboard"]

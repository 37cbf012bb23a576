# syntax=docker/dockerfile:1
# hubjobs: a static, non-root image holding only the binary.
#   docker build --build-arg VERSION=$(git describe --tags --always) -t hubjobs .
#   docker run -p 8080:8080 -v $PWD/config.yaml:/etc/hubjobs/config.yaml:ro \
#     -e HUBJOBS_SESSION_KEY=... -e HUBJOBS_OIDC_CLIENT_SECRET=... hubjobs
# The config must listen on 0.0.0.0:8080 (the health check probes
# 127.0.0.1:8080/readyz; set HUBJOBS_LISTEN to move both).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO_ENABLED=0: pure Go throughout (modernc.org/sqlite), so the binary is
# static and runs on distroless/static without libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/hubjobs ./cmd/hubjobs \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/hubjobs /hubjobs
# The data directory (default SQLite audit trail) belongs to nonroot (65532).
COPY --from=build --chown=65532:65532 /out/data /var/lib/hubjobs
USER nonroot
VOLUME /var/lib/hubjobs
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/hubjobs", "healthcheck"]
ENTRYPOINT ["/hubjobs", "serve", "--config", "/etc/hubjobs/config.yaml"]

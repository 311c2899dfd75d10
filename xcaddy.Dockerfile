# Builds Caddy with authgate, the xcaddy way, from this checkout.
#   docker build -f xcaddy.Dockerfile -t authgate .
# The same binary comes from a plain `go build -o caddy ./cmd/caddy`.
ARG CADDY_VERSION=2.11.9

FROM caddy:${CADDY_VERSION}-builder AS builder
ARG CADDY_VERSION
WORKDIR /src
# .dockerignore keeps stores, backups, binaries and .git out of the context.
COPY . .
# --with <module>=<path> builds this checkout, pinned to the Caddy version
# in go.mod.
RUN xcaddy build v${CADDY_VERSION} --output /usr/bin/caddy \
	--with github.com/authgate/authgate=/src

FROM caddy:${CADDY_VERSION}
COPY --from=builder /usr/bin/caddy /usr/bin/caddy
# The store lives in Caddy's data directory (/data in this image) unless a
# `db` path is configured.
VOLUME /data

# syntax=docker/dockerfile:1
# The image holds exactly the binary `make build-static` builds, which CI
# builds and runs too.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make build-static VERSION=${VERSION}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/eventstreamd-static /eventstreamd
USER nonroot:nonroot
# The public API on 9922; /metrics apart on 9923, as in deploy/, so that
# publishing the API does not publish the per-stream series.
ENV EVENTSTREAMD_METRICS_ADDR=:9923
EXPOSE 9922 9923
# Configuration comes from EVENTSTREAMD_* variables (see the README).
# The image has no shell and no curl: the binary checks itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/eventstreamd", "healthcheck"]
ENTRYPOINT ["/eventstreamd"]

#!/bin/sh
# Makes the images docker-compose.yml names but this machine cannot pull (no image registry):
# `debian:bookworm-slim` from debootstrap (the Tansu images' base), then the stand-ins of
# standins.Dockerfile under the official names. An image already present is kept, so a second
# run costs nothing. Needs root, podman, debootstrap and pip (for moto's wheels).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
cache="${TANSU_COMPOSE_CACHE:-$HOME/.cache/tansu/compose}"
mkdir -p "$cache"
has() { podman image exists "$1"; }

if ! has docker.io/library/debian:bookworm-slim; then
  if [ ! -s "$cache/bookworm-slim.tar" ]; then
    rootfs="$(mktemp -d)"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
    # What the official slim image leaves out: package lists, caches, docs, man pages, locales.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* \
      "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/info/*
    tar -C "$rootfs" -cf "$cache/bookworm-slim.tar.part" .
    mv "$cache/bookworm-slim.tar.part" "$cache/bookworm-slim.tar"
    rm -rf "$rootfs"
  fi
  podman import -q "$cache/bookworm-slim.tar" docker.io/library/debian:bookworm-slim >/dev/null
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$here/standins.Dockerfile" "$here/postgres-entrypoint.sh" "$here/mc.py" "$ctx/"
mkdir "$ctx/wheels"
for pair in postgres=docker.io/library/postgres:15-bookworm redis=docker.io/library/redis:7-bookworm \
            minio=docker.io/minio/minio:RELEASE.2025-04-22T22-12-26Z mc=docker.io/minio/mc:RELEASE.2025-04-16T18-13-26Z \
            mailpit=docker.io/axllent/mailpit:v1.24.1; do
  target="${pair%%=*}" image="${pair#*=}"
  has "$image" && continue
  if [ "$target" = minio ] && [ -z "$(ls "$ctx/wheels")" ]; then
    python3 -m pip download --quiet --disable-pip-version-check 'moto[s3,server]' -d "$ctx/wheels"
  fi
  podman build -q --network host -f "$ctx/standins.Dockerfile" --target "$target" -t "$image" "$ctx" >/dev/null
  echo "built the stand-in $image"
done

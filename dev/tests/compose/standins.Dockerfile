# Local stand-ins for the third-party images docker-compose.yml names, for machines that cannot
# pull images (CI: dev/tests/compose.rs builds each target under the image name the compose file
# uses). Built from Debian bookworm packages (and moto from PyPI) on top of a debootstrapped
# `debian:bookworm-slim`; each takes the environment, command, ports and volume paths the compose
# file gives the real image, and implements only what the stack uses:
#
# - postgres:15-bookworm: Debian's PostgreSQL 15; POSTGRES_USER/POSTGRES_DB/POSTGRES_PASSWORD_FILE,
#   initdb on an empty data volume, /docker-entrypoint-initdb.d/*.sql, password auth on 5432.
# - redis:7-bookworm: Debian's Redis 7.0, protected mode off like the official image.
# - minio/minio: moto's S3 server on 9000 (keeps objects in memory; does not check signatures).
# - minio/mc: `mc alias set` (fails until the server answers) and `mc mb [--ignore-existing]`.
# - axllent/mailpit: an SMTP sink on 1025 (aiosmtpd).
FROM docker.io/library/debian:bookworm-slim AS apt
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq

FROM apt AS postgres
RUN apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["/bin/sh", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]

FROM apt AS redis
RUN apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /data
ENTRYPOINT ["/bin/sh", "-c", "exec \"$@\" --protected-mode no", "redis"]
CMD ["redis-server"]

FROM apt AS python
RUN apt-get install -y -qq --no-install-recommends python3 python3-venv python3-aiosmtpd >/dev/null \
    && rm -rf /var/lib/apt/lists/*

# moto's wheels come with the context (`wheels/`, fetched on the host with `pip download`): the
# image has no CA certificates, and the host's pip is set up for its network.
FROM python AS minio
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/moto \
    && /opt/moto/bin/pip install --quiet --no-index --find-links /tmp/wheels 'moto[s3,server]' \
    && rm -rf /tmp/wheels
# MinIO's command (`server /data`) is ignored.
ENTRYPOINT ["/bin/sh", "-c", "exec /opt/moto/bin/moto_server -H 0.0.0.0 -p 9000", "minio"]

FROM python AS mc
COPY mc.py /usr/local/bin/mc
RUN chmod 755 /usr/local/bin/mc
ENTRYPOINT ["/usr/local/bin/mc"]

FROM python AS mailpit
ENTRYPOINT ["python3", "-m", "aiosmtpd", "-n", "-l", "0.0.0.0:1025"]

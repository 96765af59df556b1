# The farm image: one image for every role (migrate, api, sweeper, flower, CPU and GPU
# workers); the command picks the role, e.g. `docker run farm worker --queues gpu`.
#
#   docker build -t farm .
#
# torch is installed first, in its own layer, from TORCH_SPEC. The default is the plain
# requirement; a GPU host usually wants a specific CUDA build, which is the studio's choice:
#
#   docker build -t farm --build-arg TORCH_SPEC="torch==2.13.0 --index-url <your torch index>" .
#
# TORCH_SPEC is split into words on purpose, so it may carry pip options. Nothing secret is
# baked in: database and broker URLs, passwords and the webhook secret come from the
# environment at run time (see docker-compose.yml and docs/deploy.md).

FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FARM_OUTPUT_ROOT=/srv/farm/out \
    FARM_DATA_DIR=/srv/farm/data

# 1. torch: the largest layer, rebuilt only when TORCH_SPEC changes.
# hadolint ignore=DL3013,SC2086
RUN pip install $TORCH_SPEC

WORKDIR /opt/farm

# 2. the farm's dependencies, read from pyproject.toml, so a source change does not reinstall
#    them. torch is already there and satisfies the project's own torch requirement.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# 3. the farm itself. Editable on purpose: farm.migrate finds migrations/ beside the farm
#    package in the source tree, which a plain wheel install would not carry.
COPY farm ./farm
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --no-deps -e . \
    && python -c "import farm.cli, workers.main" \
    && farm --help > /dev/null

# 4. an unprivileged user owning only the output root and the data directory. A named volume
#    mounted on /srv/farm/out starts with this ownership.
RUN groupadd --system --gid 10001 farm \
    && useradd --system --uid 10001 --gid farm --home-dir /srv/farm --shell /usr/sbin/nologin farm \
    && mkdir -p /srv/farm/out /srv/farm/data \
    && chown -R farm:farm /srv/farm

USER farm
WORKDIR /srv/farm

# API and Flower ports (only those roles listen).
EXPOSE 8000 5555

ENTRYPOINT ["farm"]
CMD ["--help"]

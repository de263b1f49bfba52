# The serving image: an exported model (python -m chatft export) over HTTP with onnxruntime; no torch,
# Lightning or transformers (pip install '.[serve]' only).
#
#   docker build -t chatft-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/export:/model:ro" chatft-serve
#   curl -s localhost:8000/model/parse -d '{"text": "book a flight to boston"}'
#
# The model is mounted at /model (read-only is fine); dialogue sessions go to /data (a volume for them to
# survive the container). Other serve options follow the image name: ... chatft-serve --workers 2.
# BASE: any Debian-like image with python3 >= 3.10 and its venv module (python:3.11-slim by default).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# .dockerignore lets in only pyproject.toml, README.md, configs/, chatft/ (and wheels/, when there is one).
COPY . /src
# PIP_OPTIONS: extra pip options, e.g. "--no-index --find-links /src/wheels" to build offline from wheels
# put in the build context (tests/test_container.py does this).
ARG PIP_OPTIONS=""
RUN python3 -m venv /opt/chatft \
 && /opt/chatft/bin/pip install --no-cache-dir --disable-pip-version-check $PIP_OPTIONS "/src[serve]" \
 && /opt/chatft/bin/pip uninstall -y -q pip \
 && find /opt/chatft -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE}
COPY --from=build /opt/chatft /opt/chatft
RUN useradd --system --uid 10001 --home-dir /data --create-home chatft
USER chatft
WORKDIR /data
ENV PATH=/opt/chatft/bin:$PATH PYTHONUNBUFFERED=1
EXPOSE 8000
# /ready answers 200 once the model is loaded (503 before); urllib, since a slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2)"]
ENTRYPOINT ["python", "-m", "chatft", "serve", "--onnx", "/model", "--host", "0.0.0.0", "--port", "8000", "--sessions", "/data/sessions.sqlite"]

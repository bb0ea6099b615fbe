# drip: one image for every role (migrate, worker, beat, web, flower).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DRIP_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY drip ./drip
COPY workers ./workers
RUN pip install . flower

# Campaigns are data marketing ops edit; mount over /app/campaigns to change them.
COPY campaigns ./campaigns

# /app/spool: the web service's webhook spool (a named volume in docker-compose.yml,
# which takes this folder's owner when first mounted).
RUN useradd --system --home /app drip && mkdir -p /app/spool && chown -R drip /app
USER drip

EXPOSE 8000
CMD ["drip", "--help"]

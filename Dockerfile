# One image for web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=emhub.settings.production \
    EMHUB_VAR_DIR=/app/var

RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 emhub

WORKDIR /app
# Dependencies first, so a code change does not reinstall them: exactly the pinned
# versions, each file checked against its hash (requirements/runtime.txt, `make lock`).
COPY requirements/runtime.txt requirements/runtime.txt
RUN pip install --require-hashes --no-deps -r requirements/runtime.txt
# The code runs from /app (templates, static files and the hub's WSDL live beside it),
# installed with the locked setuptools and nothing fetched besides.
COPY . .
RUN pip install --no-deps --no-build-isolation -e .

# collectstatic needs settings that load; these placeholders never reach a running container.
RUN SECRET_KEY=build-only DATABASE_URL=sqlite:////tmp/build.sqlite3 CELERY_BROKER_URL=memory:// \
    FIELD_ENCRYPTION_KEYS=MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA= \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown -R emhub /app/var

USER emhub
EXPOSE 8000
CMD ["gunicorn", "emhub.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]

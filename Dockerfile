# flashsale's CLI from this checkout: `docker compose run --rm flashsale <command>`.
FROM python:3.11-slim
COPY . /src
RUN pip install --no-cache-dir /src && rm -rf /src
WORKDIR /data
ENTRYPOINT ["flashsale"]
CMD ["--help"]

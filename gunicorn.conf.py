# gunicorn reads this file from the working directory (the image's /app, `make run`'s
# project folder). Settings given on the command line win over the ones here.
logger_class = "emhub.access_log.RedactingLogger"

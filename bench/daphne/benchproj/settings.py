# The smallest Django project that serves the benchmark's three WebSocket
# routes through Django Channels, as a Channels user would: daphne, the ASGI
# application in asgi.py, and the in-memory channel layer at its defaults
# (capacity 100 messages per channel, expiry 60 s).
SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
MIDDLEWARE = []
ROOT_URLCONF = "benchproj.urls"
DATABASES = {}
USE_TZ = True
ASGI_APPLICATION = "benchproj.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

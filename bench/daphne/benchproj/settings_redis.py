# The benchmark project on channels_redis instead of the in-memory layer, for
# the scenarios where several processes share one room (bench/redis_bench.py)
# and for the daphne interop test: DJANGO_SETTINGS_MODULE=benchproj.settings_redis
# and CHANNELS_REDIS_HOSTS=redis://127.0.0.1:PORT[,redis://...] (in the order
# cppchannels gets them, so that both shard alike).
import os

from .settings import *  # noqa: F401,F403

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": os.environ["CHANNELS_REDIS_HOSTS"].split(","),
            # channels_redis' default is 100 per key, and a key holds what
            # waits for a whole process: a burst to a room needs more.
            "capacity": int(os.environ.get("CHANNELS_REDIS_CAPACITY", "100")),
        },
    },
}

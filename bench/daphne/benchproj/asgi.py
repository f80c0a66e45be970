"""The benchmark's ASGI application: the same three WebSocket routes as the
chat app's routing.yaml. Served by `python3 -m daphne benchproj.asgi:application`
from bench/daphne/ (bench/run.sh does that)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from . import consumers  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                path("ws/echo/", consumers.EchoConsumer.as_asgi()),
                re_path(r"^room/(?P<group>[\w.-]+)/$", consumers.RoomConsumer.as_asgi()),
                re_path(r"ws/chat/(?P<room_name>\w+)/$", consumers.ChatConsumer.as_asgi()),
            ]
        ),
    }
)
